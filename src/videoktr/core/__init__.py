"""Pure tensor math of Video-KTR: no model, no I/O.

* :mod:`~videoktr.core.signals` — per-token scores: counterfactual log-prob deltas, entropy.
* :mod:`~videoktr.core.advantages` — GRPO group-relative advantages.
* :mod:`~videoktr.core.selection` — key-token masks (top-k or quantile) and soft weights.
* :mod:`~videoktr.core.losses` — the clipped GRPO objective with per-token weights.
"""

from .advantages import group_advantages
from .losses import AGGREGATIONS, grpo_loss
from .selection import SELECTION_METHODS, SOFT_WEIGHTINGS, num_selected, select_key_tokens, soft_token_weights
from .signals import logprob_delta, token_entropy, token_logps_and_entropy

__all__ = [
    "AGGREGATIONS",
    "SELECTION_METHODS",
    "SOFT_WEIGHTINGS",
    "group_advantages",
    "grpo_loss",
    "logprob_delta",
    "num_selected",
    "select_key_tokens",
    "soft_token_weights",
    "token_entropy",
    "token_logps_and_entropy",
]
