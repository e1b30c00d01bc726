"""CachedShuffleCycle: seeded epochs, each row prepared once, turned-down rows skipped."""

from __future__ import annotations

import pytest
import torch

from videoktr.data.cycle import CachedShuffleCycle


def test_each_epoch_is_the_seeded_permutation_and_each_row_is_prepared_once():
    calls = []

    def prepare(index):
        calls.append(index)
        return f"row{index}"

    cycle = CachedShuffleCycle(5, prepare, seed=7, empty_message="empty")
    drawn = [next(cycle) for _ in range(15)]
    generator = torch.Generator().manual_seed(7)
    expected = []
    for _ in range(3):
        expected += [f"row{i}" for i in reversed(torch.randperm(5, generator=generator).tolist())]
    assert drawn == expected
    assert sorted(calls) == [0, 1, 2, 3, 4]


def test_turned_down_rows_are_skipped_and_asked_once():
    calls = []

    def prepare(index):
        calls.append(index)
        return None if index % 2 else index

    cycle = CachedShuffleCycle(6, prepare, seed=0, empty_message="empty")
    drawn = [next(cycle) for _ in range(30)]
    assert set(drawn) == {0, 2, 4}
    assert sorted(calls) == list(range(6))


def test_no_usable_row_and_no_row_raise_the_message():
    with pytest.raises(ValueError, match="nothing to train on"):
        next(CachedShuffleCycle(4, lambda index: None, seed=0, empty_message="nothing to train on"))
    with pytest.raises(ValueError, match="no rows"):
        CachedShuffleCycle(0, lambda index: index, seed=0, empty_message="no rows")
