"""videoktr: reinforcement learning of video LLMs with key-token attribution (Video-KTR).

GRPO pushes one sequence-level reward into every generated token. Video-KTR updates only the
tokens that matter: those whose probability depends on seeing the video (visual), on seeing it
in order (temporal), or where the model hesitates (entropy).

::

    from videoktr import VideoGRPOConfig, VideoGRPOTrainer, KeyTokenAttributor, select_key_tokens

The core functions (pure tensor math) and ``KeyTokenAttributor`` import with the package; the
trainer's names (``VideoGRPOConfig``, ``VideoGRPOTrainer``, ``load_config``) load
``transformers.Trainer`` on first use, so ``import videoktr`` stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .attribution import KeyTokenAttributor
from .core import (
    SIGNALS,
    agg_loss,
    aggregation_normaliser,
    group_advantages,
    grpo_loss,
    logprob_delta,
    select_key_tokens,
    soft_token_weights,
    token_entropy,
    token_logps_and_entropy,
)

if TYPE_CHECKING:
    from .train import VideoGRPOConfig, VideoGRPOTrainer, load_config

__version__ = "0.1.0"

_TRAINER_NAMES = ("VideoGRPOConfig", "VideoGRPOTrainer", "load_config")


def __getattr__(name: str) -> Any:
    if name in _TRAINER_NAMES:
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module 'videoktr' has no attribute {name!r}")


__all__ = [
    "SIGNALS",
    "KeyTokenAttributor",
    "VideoGRPOConfig",
    "VideoGRPOTrainer",
    "__version__",
    "agg_loss",
    "aggregation_normaliser",
    "group_advantages",
    "grpo_loss",
    "load_config",
    "logprob_delta",
    "select_key_tokens",
    "soft_token_weights",
    "token_entropy",
    "token_logps_and_entropy",
]
