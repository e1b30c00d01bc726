"""Rows of a dataset in endless seeded reshuffles, each prepared once: for supervised loops.

The demo's supervised stages (``experiments.warmup``, ``experiments.encoder``,
``experiments.order``) see every row of a small dataset many times. Decoding a clip and
running the processor cost far more than a training step on it, so each row is prepared once and
kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import torch

__all__ = ["CachedShuffleCycle"]

Item = TypeVar("Item")


class CachedShuffleCycle(Generic[Item]):
    """``next()`` gives the prepared rows epoch after epoch, each epoch a ``torch.randperm`` of
    the ``size`` rows under a generator seeded with ``seed``, taken from its end.

    ``prepare(index)`` runs once per row and its result is cached. A row it turns down (returns
    ``None``: unreadable media, a row without what the loop needs) is skipped from then on; once
    every row has been turned down, ``next()`` raises ``ValueError(empty_message)``, as does an
    empty dataset at construction.
    """

    def __init__(self, size: int, prepare: Callable[[int], Item | None], seed: int, empty_message: str) -> None:
        if size < 1:
            raise ValueError(empty_message)
        self.size = size
        self.empty_message = empty_message
        self._prepare = prepare
        self._generator = torch.Generator().manual_seed(seed)
        self._order: list[int] = []
        self._cache: dict[int, Item | None] = {}
        self._usable = 0

    def __iter__(self) -> CachedShuffleCycle[Item]:
        return self

    def __next__(self) -> Item:
        while True:
            if not self._order:
                self._order.extend(torch.randperm(self.size, generator=self._generator).tolist())
            index = self._order.pop()
            if index not in self._cache:
                self._cache[index] = item = self._prepare(index)
                self._usable += item is not None
            if self._cache[index] is not None:
                return self._cache[index]
            if len(self._cache) == self.size and not self._usable:
                raise ValueError(self.empty_message)
