"""The default rollout backend: the policy samples its own completions with transformers'
``generate``, all prompts of a micro-batch in one left-padded call."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..models.generation import generate_batch_completions
from .base import RolloutRequest, SampledCompletions, SamplingSettings

__all__ = ["HFRolloutBackend"]


class HFRolloutBackend:
    """Samples with the policy itself (``models.generation.generate_batch_completions``).

    Args:
        policy: returns the model to generate with (the trainer's unwrapped policy: a callable,
            because accelerate may wrap or replace the module after construction).
        processor: the model's processor.
        device: where the random stream is forked (CUDA's too when on a GPU).

    The random stream is seeded with the first request's seed, inside a forked RNG so data
    loading's stream is untouched: a micro-batch of one prompt samples exactly what
    ``generate_completions`` does under that seed.
    """

    name = "hf"
    needs_weights = False
    weights_version = None

    def __init__(self, policy: Callable[[], torch.nn.Module], processor, device: torch.device | None = None) -> None:
        self._policy = policy
        self.processor = processor
        self.device = device

    def describe(self) -> str:
        return "rollouts: the policy's own generate (transformers), each micro-batch's prompts in one call"

    def sample(self, requests: Sequence[RolloutRequest], settings: SamplingSettings) -> list[SampledCompletions]:
        if not requests:
            return []
        devices = [self.device] if self.device is not None and self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(requests[0].seed)
            results = generate_batch_completions(
                self._policy(), self.processor, [request.prompt_inputs for request in requests],
                settings.num_generations, settings.max_completion_length, settings.temperature, settings.top_p,
            )
        return [SampledCompletions(ids, mask) for ids, mask in results]

    def sync_weights(self, model: torch.nn.Module, step: int, state_dict: dict | None = None) -> str | None:
        return None  # the sampler is the policy

    def close(self) -> None:
        pass
