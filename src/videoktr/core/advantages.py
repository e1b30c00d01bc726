"""Group-relative advantages (GRPO)."""

from __future__ import annotations

import torch

from ._checks import check_group_size, check_ndim, check_tensor, compute_dtype

ADVANTAGE_SCALES = ("std", "none")


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "std", eps: float = 1e-4
) -> torch.Tensor:
    """Advantage of each completion relative to the other completions of its prompt.

    Rows ``g*G .. g*G+G-1`` hold the ``G = group_size`` completions of prompt ``g``::

        A_i = r_i - mean_group(r)                              (scale="none")
        A_i = (r_i - mean_group(r)) / (std_group(r) + eps)     (scale="std", the GRPO default)

    ``std_group`` is the unbiased standard deviation (divisor ``G - 1``). A group of one
    completion has no spread: its std is taken as 0, so its advantage is 0.

    Args:
        rewards: ``[B]`` scalar reward per completion.
        group_size: ``G``, completions per prompt; ``B`` must be divisible by it.
        scale: ``"std"`` or ``"none"``.
        eps: added to the std so an all-equal group gives advantage 0, not NaN.

    Returns:
        ``[B]`` advantages in at least float32.
    """
    rewards = check_tensor("rewards", rewards)
    check_ndim("rewards", rewards, (1,))
    group_size = check_group_size(group_size, rewards.shape[0], required=True)
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"scale must be one of {', '.join(ADVANTAGE_SCALES)}; got {scale!r}")
    if not isinstance(eps, (int, float)) or eps < 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    dtype = compute_dtype(rewards.dtype if rewards.is_floating_point() else torch.float32)
    grouped = rewards.to(dtype).reshape(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "std":
        if group_size > 1:
            std = grouped.std(dim=1, unbiased=True, keepdim=True)
        else:
            std = torch.zeros_like(centred)
        centred = centred / (std + eps)
    return centred.reshape(-1)
