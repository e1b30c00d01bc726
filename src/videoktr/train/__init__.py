"""GRPO with key-token reinforcement on ``transformers.Trainer``.

* :mod:`~videoktr.train.config` — ``VideoGRPOConfig`` (TRL's names where the concept is the
  same), the presets, and ``load_config`` (defaults <- preset <- YAML <- flags);
* :mod:`~videoktr.train.trainer` — ``VideoGRPOTrainer``: rollout -> reward -> advantage ->
  attribution -> selection -> loss, one prompt's results carried in a
  ``data.rollouts.PromptRollout``;
* :mod:`~videoktr.train.callbacks` — the compact progress bar;
* :mod:`~videoktr.train.run` — the recipe behind ``videoktr train``.
"""

from .config import PRESETS, ConfigError, VideoGRPOConfig, load_config
from .run import train
from .trainer import VideoGRPOTrainer

__all__ = ["PRESETS", "ConfigError", "VideoGRPOConfig", "VideoGRPOTrainer", "load_config", "train"]
