"""How much of a policy-gradient update a token mask keeps: a diagnostic every run can log.

A mask that drops near-certain tokens removes little of the update, because such a token's
log-probability hardly moves with its logits (its gradient weight ``g_t``, from
:func:`videoktr.core.signals.token_log_stats`, is near 0). The share below says how much
of the update's size a mask keeps or drops, from quantities the scoring pass already has.
"""

from __future__ import annotations

import torch

from ._checks import as_bool_mask, check_float, check_tensor, compute_dtype

__all__ = ["gradient_share"]


def gradient_share(
    advantages: torch.Tensor,
    gradient_weight: torch.Tensor,
    token_mask: torch.Tensor,
    completion_mask: torch.Tensor,
) -> torch.Tensor:
    """The share of the policy gradient's squared norm, with respect to the logits, that the
    tokens of ``token_mask`` carry::

        share = sum_{t in mask} A_t^2 g_t  /  sum_{t in completion} A_t^2 g_t

    where ``g_t = || d log p(y_t) / d z_t ||^2``. At the start of an update (ratio 1, no
    clipping) the gradient of ``-sum_t A_t log p(y_t)`` with respect to position ``t``'s logits
    is ``-A_t (softmax(z_t) - onehot(y_t))``, whose squared norm is ``A_t^2 g_t``; positions
    have separate logits, so the squared norms add up. The aggregation's normaliser is left
    out (it is common to every token of a batch under ``token_mean``). Pass the complement of a
    key-token mask to get the share the mask drops.

    Args:
        advantages: ``[B]`` per-completion or ``[B, T]`` per-token advantages.
        gradient_weight: ``[B, T]`` ``g_t`` (``token_log_stats(..., with_gradient_weight=True)``).
        token_mask: ``[B, T]`` bool, the tokens whose share is wanted.
        completion_mask: ``[B, T]`` bool, true on generated tokens; only these count.

    Returns:
        A 0-dim tensor in ``[0, 1]`` (at least float32); 0 when no completion token carries any
        gradient (every advantage 0, say).
    """
    check_float("gradient_weight", gradient_weight)
    check_float("advantages", check_tensor("advantages", advantages))
    mask = as_bool_mask("completion_mask", completion_mask, gradient_weight.shape)
    selected = as_bool_mask("token_mask", token_mask, gradient_weight.shape) & mask
    if advantages.shape not in (gradient_weight.shape[:1], gradient_weight.shape):
        raise ValueError(f"advantages must have shape [B] or [B, T] = {tuple(gradient_weight.shape)}, "
                         f"got {tuple(advantages.shape)}")
    dtype = compute_dtype(gradient_weight.dtype)
    per_token = advantages.to(dtype) if advantages.dim() == 2 else advantages.to(dtype).unsqueeze(-1)
    mass = torch.where(mask, per_token.square() * gradient_weight.to(dtype), torch.zeros((), dtype=dtype))
    total = mass.sum()
    kept = torch.where(selected, mass, torch.zeros((), dtype=dtype)).sum()
    return torch.where(total > 0, kept / torch.where(total > 0, total, torch.ones_like(total)), torch.zeros_like(total))
