"""Correcting for a sampler that is not the trainer: truncated importance sampling (TIS).

An inference engine (vLLM) samples the completions with its own kernels, so the probability it
gave a token differs slightly from the trainer's for the same weights. The GRPO ratio compares
the trainer's current log-probs with the trainer's own old ones, so the rollouts are, strictly,
off-policy by the sampler/trainer gap. TIS reweights each token's policy-gradient term by that
gap, truncated from above so one badly matched token cannot dominate the update (TRL's
``vllm_importance_sampling_correction`` in its ``token_truncate`` mode).
"""

from __future__ import annotations

import torch

from ._checks import as_bool_mask, check_float, check_same_shape, compute_dtype

__all__ = ["truncated_importance_weights"]


@torch.no_grad()
def truncated_importance_weights(
    trainer_logps: torch.Tensor,
    sampler_logps: torch.Tensor,
    completion_mask: torch.Tensor,
    cap: float = 2.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-token truncated importance weights from the sampler to the trainer::

        w_t = min(exp(logp_trainer_t - logp_sampler_t), cap)       (0 on padding)

    ``grpo_loss(..., importance_weights=w)`` multiplies each token's policy-gradient term by
    ``w_t``; with identical log-probs every weight is 1 and the loss is the on-policy one.

    Args:
        trainer_logps: ``[B, T]`` the trainer's log-probs of the sampled tokens before the update
            (the old log-probs), at the sampling temperature.
        sampler_logps: ``[B, T]`` the log-probs the sampler reported for the same tokens.
        completion_mask: ``[B, T]``, true on generated tokens.
        cap: the truncation ``C`` (> 0); TRL's ``vllm_importance_sampling_cap``.

    Returns:
        ``(weights, metrics)``: detached ``[B, T]`` weights (the trainer's compute dtype) and
        0-dim metrics over completion tokens: ``logp_mismatch_mean`` and ``logp_mismatch_max``
        (``|logp_trainer - logp_sampler|``), ``ratio_mean`` (before truncation) and
        ``truncated_share`` (the share of tokens whose ratio exceeded ``cap``).
    """
    check_float("trainer_logps", trainer_logps)
    check_float("sampler_logps", sampler_logps)
    check_same_shape("sampler_logps", sampler_logps, "trainer_logps", trainer_logps)
    mask = as_bool_mask("completion_mask", completion_mask, trainer_logps.shape)
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not cap > 0:
        raise ValueError(f"cap must be a positive number, got {cap!r}")
    dtype = compute_dtype(trainer_logps.dtype)
    zeros = torch.zeros((), dtype=dtype, device=trainer_logps.device)
    # Padding may hold anything (a sampler reports nothing there): sanitise before exp().
    difference = torch.where(mask, trainer_logps.to(dtype) - sampler_logps.to(dtype), zeros)
    ratio = torch.where(mask, torch.exp(difference), zeros)
    weights = torch.clamp(ratio, max=float(cap))
    tokens = mask.sum().clamp(min=1).to(dtype)
    mismatch = difference.abs()
    metrics = {
        "logp_mismatch_mean": mismatch.sum() / tokens,
        "logp_mismatch_max": mismatch.max() if mismatch.numel() else zeros,
        "ratio_mean": ratio.sum() / tokens,
        "truncated_share": ((ratio > cap) & mask).sum().to(dtype) / tokens,
    }
    return weights, metrics
