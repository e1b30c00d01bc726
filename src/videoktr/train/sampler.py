"""The order prompts are drawn in: each optimizer step's prompts repeated ``num_iterations``
times, so GRPO's ``mu`` updates reuse one set of rollouts."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from ..data.dataset import Sample

__all__ = ["RepeatBatchSampler", "identity_collate"]


class RepeatBatchSampler(Sampler[int]):
    """Shuffled indices in which each chunk of ``chunk_size`` is repeated ``repeat_count`` times.

    With ``chunk_size`` = the prompts one optimizer step consumes on all processes and
    ``repeat_count`` = ``num_iterations``, the ``mu`` updates of GRPO see the same prompts and
    the trainer reuses their rollouts instead of generating new ones.
    """

    def __init__(self, num_items: int, chunk_size: int, repeat_count: int, seed: int) -> None:
        self.num_items, self.chunk_size, self.repeat_count, self.seed = num_items, chunk_size, repeat_count, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.num_items / self.chunk_size) * self.chunk_size * self.repeat_count

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_items, generator=generator).tolist()
        order += order[: (-len(order)) % self.chunk_size]  # fill the last chunk by wrapping around
        for start in range(0, len(order), self.chunk_size):
            chunk = order[start : start + self.chunk_size]
            for _ in range(self.repeat_count):
                yield from chunk


def identity_collate(samples: list[Sample]) -> list[Sample]:
    """The micro-batch as the list of its samples: rollouts decode and process them one by one."""
    return samples
