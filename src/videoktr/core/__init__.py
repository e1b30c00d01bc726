"""Pure tensor math of Video-KTR: no model, no I/O.

* :mod:`~videoktr.core.signals` — the signal names and per-token scores: counterfactual
  log-prob deltas, entropy.
* :mod:`~videoktr.core.advantages` — GRPO group-relative advantages.
* :mod:`~videoktr.core.selection` — key-token masks (top-k, quantile, or by score mass) and soft weights.
* :mod:`~videoktr.core.losses` — the clipped GRPO objective with per-token weights, and the
  aggregations every loss reduces with (``agg_loss``, ``aggregation_normaliser``).
* :mod:`~videoktr.core.permutations` — seeded derangements for the temporal counterfactual.
* :mod:`~videoktr.core.importance` — truncated importance weights for a sampler other than
  the trainer (vLLM rollouts).
* :mod:`~videoktr.core.diagnostics` — how much of the update a token mask keeps
  (``gradient_share``; each token's gradient weight comes from ``token_log_stats``).
"""

from .advantages import ADVANTAGE_SCALES, group_advantages
from .diagnostics import gradient_share
from .importance import truncated_importance_weights
from .losses import AGGREGATIONS, TRL_LOSS_TYPES, agg_loss, aggregation_normaliser, grpo_loss
from .permutations import sample_derangements
from .selection import (
    SCOPES,
    SELECTION_METHODS,
    SOFT_WEIGHTINGS,
    num_selected,
    select_key_tokens,
    select_key_tokens_by_mass,
    soft_token_weights,
)
from .signals import (
    SIGNALS,
    TokenLogStats,
    logprob_delta,
    token_entropy,
    token_log_stats,
    token_logps_and_entropy,
)

__all__ = [
    "ADVANTAGE_SCALES",
    "AGGREGATIONS",
    "SCOPES",
    "SELECTION_METHODS",
    "SIGNALS",
    "SOFT_WEIGHTINGS",
    "TRL_LOSS_TYPES",
    "TokenLogStats",
    "agg_loss",
    "aggregation_normaliser",
    "gradient_share",
    "group_advantages",
    "grpo_loss",
    "logprob_delta",
    "num_selected",
    "sample_derangements",
    "select_key_tokens",
    "select_key_tokens_by_mass",
    "soft_token_weights",
    "token_entropy",
    "token_log_stats",
    "token_logps_and_entropy",
    "truncated_importance_weights",
]
