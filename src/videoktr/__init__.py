"""videoktr: reinforcement learning of video LLMs with key-token attribution (Video-KTR).

GRPO pushes one sequence-level reward into every generated token. Video-KTR updates only the
tokens that matter: those whose probability depends on seeing the video (visual), on seeing it
in order (temporal), or where the model hesitates (entropy).
"""

from .attribution import KeyTokenAttributor
from .core import (
    group_advantages,
    grpo_loss,
    logprob_delta,
    select_key_tokens,
    soft_token_weights,
    token_entropy,
    token_logps_and_entropy,
)

__version__ = "0.1.0"

__all__ = [
    "KeyTokenAttributor",
    "__version__",
    "group_advantages",
    "grpo_loss",
    "logprob_delta",
    "select_key_tokens",
    "soft_token_weights",
    "token_entropy",
    "token_logps_and_entropy",
]
