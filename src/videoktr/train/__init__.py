"""The GRPO trainer with key-token reinforcement (in progress: the configuration is here)."""

from .config import PRESETS, ConfigError, VideoGRPOConfig, load_config

__all__ = ["PRESETS", "ConfigError", "VideoGRPOConfig", "load_config"]
