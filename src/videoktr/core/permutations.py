"""Seeded derangements: the frame orders of the temporal counterfactual."""

from __future__ import annotations

import math

import torch


def num_derangements(n: int) -> int:
    """``!n``, the number of permutations of ``n`` items with no fixed point."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    count_prev, count = 1, 0  # !0 = 1, !1 = 0
    if n == 0:
        return 1
    for k in range(2, n + 1):
        count_prev, count = count, (k - 1) * (count + count_prev)
    return count


def sample_derangements(
    num_items: int, count: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``count`` distinct random derangements of ``range(num_items)``, as ``[count, num_items]``.

    A derangement moves every item (``perm[i] != i`` for all ``i``), so a shuffled video never
    equals the original: the official code's plain ``randperm`` can return the identity (with
    probability ``1/n!``, a sizeable 1/2 for two groups), which yields a zero temporal signal.
    Permutations are drawn uniformly from ``randperm`` and rejected until they have no fixed
    point (about ``e`` draws each). When fewer than ``count`` derangements exist (``!2 = 1``,
    ``!3 = 2``), all of them are returned, in a random order.

    Args:
        num_items: at least 2.
        count: how many distinct derangements.
        generator: the ``torch.Generator`` that makes the draw reproducible.

    Returns:
        ``[min(count, !num_items), num_items]`` LongTensor; row ``k`` maps new position ``i`` to
        the old item ``perm[k, i]``.
    """
    if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 2:
        raise ValueError(f"num_items must be an int >= 2 to shuffle, got {num_items!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    count = min(count, num_derangements(num_items)) if num_items < 13 else count
    identity = torch.arange(num_items)
    found: list[torch.Tensor] = []
    seen: set[tuple[int, ...]] = set()
    # Bounded: each draw is a derangement with probability ~1/e, and repeats are rare unless
    # count is close to !n (only possible for small n).
    max_draws = 1000 + 50 * count * math.ceil(math.e)
    for _ in range(max_draws):
        perm = torch.randperm(num_items, generator=generator)
        if bool((perm == identity).any()):
            continue
        key = tuple(perm.tolist())
        if key in seen:
            continue
        seen.add(key)
        found.append(perm)
        if len(found) == count:
            return torch.stack(found)
    raise RuntimeError(f"could not draw {count} distinct derangements of {num_items} items")  # pragma: no cover
