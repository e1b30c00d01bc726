"""What a rollout backend is given and what it returns, whichever engine samples.

The trainer hands a backend one ``RolloutRequest`` per prompt of a micro-batch (the processor's
output it will score, the decoded media, the seed) and gets back one ``SampledCompletions`` per
prompt: the ``G`` completions as token ids, which tokens count, and, from an engine other than
the policy itself, the log-probs the engine sampled them with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..data.dataset import Sample
from ..data.video import DecodedVideo

__all__ = ["RolloutBackend", "RolloutRequest", "SampledCompletions", "SamplingSettings"]


@dataclass(frozen=True)
class SamplingSettings:
    """How completions are sampled: ``temperature`` (greedy when <= 0), nucleus ``top_p``, at
    most ``max_completion_length`` new tokens, ``num_generations`` completions per prompt."""

    num_generations: int
    max_completion_length: int
    temperature: float = 1.0
    top_p: float = 1.0


@dataclass
class RolloutRequest:
    """One prompt to sample: ``prompt_inputs`` is the processor's output (batch of one) that the
    trainer scores the completions with, ``media`` the decoded frames (or image) it was built
    from, ``seed`` the prompt's sampling seed."""

    sample: Sample
    media: DecodedVideo | torch.Tensor
    prompt_inputs: Mapping[str, Any]
    seed: int


@dataclass
class SampledCompletions:
    """One prompt's completions: ``completion_ids`` ``[G, T]`` (right-padded),
    ``completion_mask`` ``[G, T]`` (true up to and including the end token) and
    ``sampler_logps`` ``[G, T]``, the sampling engine's log-probs of those tokens at the
    sampling temperature (None when the policy itself sampled: its log-probs are the trainer's)."""

    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    sampler_logps: torch.Tensor | None = None


class RolloutBackend(Protocol):
    """Samples completions for the trainer (``hf``: the policy's own ``generate``; ``vllm``: an
    inference engine in its own process)."""

    name: str
    #: whether the sampler holds its own copy of the weights (``sync_weights`` moves them)
    needs_weights: bool
    #: the optimizer step whose weights the sampler holds (None before the first sync)
    weights_version: int | None

    def describe(self) -> str:
        """One line for the run's output: who samples, and how the weights reach it."""
        ...

    def sample(self, requests: Sequence[RolloutRequest], settings: SamplingSettings) -> list[SampledCompletions]:
        """Completions for every request, in order."""
        ...

    def sync_weights(self, model: torch.nn.Module, step: int, state_dict: dict | None = None) -> str | None:
        """Make the sampler use ``model``'s current weights (the policy after optimizer step
        ``step``; ``state_dict`` a full one where the model is sharded); returns the path the
        weights took (e.g. ``"safetensors"``), or None when the sampler is the policy itself."""
        ...

    def close(self) -> None:
        """Release the engine (a no-op for ``hf``)."""
        ...
