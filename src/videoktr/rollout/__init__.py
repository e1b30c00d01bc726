"""Where completions come from: the sampling backends the trainer draws its rollouts from.

* ``hf`` (:class:`HFRolloutBackend`, the default) — the policy's own ``generate``, all prompts
  of a micro-batch in one left-padded call.
* ``vllm`` (:class:`VLLMRolloutBackend`) — a vLLM engine in its own environment and process
  (:mod:`~videoktr.rollout.vllm_server`, started by ``videoktr rollout-server``), which returns
  the completions with the log-probs it sampled them with and reloads the policy's weights after
  every optimizer step.

Both take :class:`RolloutRequest` s and return :class:`SampledCompletions` (``rollout.base``).
"""

from . import vllm_server
from .base import RolloutBackend, RolloutRequest, SampledCompletions, SamplingSettings
from .hf import HFRolloutBackend
from .vllm_backend import VLLMRolloutBackend, launch_rollout_server

__all__ = [
    "HFRolloutBackend",
    "RolloutBackend",
    "RolloutRequest",
    "SampledCompletions",
    "SamplingSettings",
    "VLLMRolloutBackend",
    "launch_rollout_server",
    "vllm_server",
]
