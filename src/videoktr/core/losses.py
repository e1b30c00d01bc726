"""The clipped GRPO objective with per-token weights (the key-token mask or soft weights), and
the aggregations that reduce per-token losses to one number.

Every loss reduces its ``[B, T]`` per-token values with :func:`agg_loss`; a trainer that runs one
backward per prompt weights each prompt's loss by :func:`aggregation_normaliser`, the same
denominator, so the sum over prompts equals the aggregation over the whole micro-batch.
TRL's ``loss_type`` names map onto the aggregations in :data:`TRL_LOSS_TYPES`.
"""

from __future__ import annotations

import functools

import torch

from ._checks import (
    as_bool_mask,
    check_float,
    check_ndim,
    check_same_shape,
    check_tensor,
    compute_dtype,
)

AGGREGATIONS = ("seq_mean", "seq_mean_selected", "token_mean", "token_mean_selected", "token_sum_norm",
                "token_mean_global")

#: TRL's ``GRPOConfig.loss_type`` names and the aggregation that computes the same loss
#: (TRL 1.16 ``GRPOTrainer._compute_loss``; ``dapo``'s normaliser spans the optimizer step).
TRL_LOSS_TYPES = {
    "grpo": "seq_mean",
    "bnpo": "token_mean",
    "dr_grpo": "token_sum_norm",
    "dapo": "token_mean_global",
}


def _check_aggregation(aggregation: str) -> None:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {aggregation!r}")


def _check_aggregation_inputs(aggregation: str, max_completion_length: int | None,
                              global_normaliser: float | torch.Tensor | None) -> None:
    _check_aggregation(aggregation)
    if aggregation == "token_sum_norm" and (
        isinstance(max_completion_length, bool) or not isinstance(max_completion_length, int)
        or max_completion_length < 1
    ):
        raise ValueError(f"token_sum_norm needs max_completion_length, a positive int; got {max_completion_length!r}")
    if aggregation == "token_mean_global" and global_normaliser is None:
        raise ValueError("token_mean_global needs global_normaliser: the completion tokens the mean is taken over")


def aggregation_normaliser(
    weights: torch.Tensor, completion_mask: torch.Tensor, aggregation: str, *,
    max_completion_length: int | None = None, global_normaliser: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """What an aggregation divides by, with ``w`` the weights (0 on padding) and ``m`` the mask::

        seq_mean             B                            rows
        seq_mean_selected    #{i : sum_t w_it > 0}        rows that select something
        token_mean           sum(m)                       completion tokens
        token_mean_selected  sum(w)                       selected weight
        token_sum_norm       B * max_completion_length    a constant per row (Dr. GRPO)
        token_mean_global    global_normaliser            given: tokens beyond this batch (DAPO)

    For the first five it is also each batch's weight when batches are aggregated one at a
    time: for batches ``b`` of one micro-batch, ``agg(all) = sum_b n_b * agg(b) / sum_b n_b``
    with ``n_b`` this value, which is how the trainer weights its one-backward-per-prompt
    losses. ``token_mean_global`` divides every batch by the same given count, so its batches
    simply add up: ``agg(all) = sum_b agg(b)``. A 0-dim tensor of ``weights``' compute dtype;
    it may be 0 (:func:`agg_loss` then divides by 1).
    """
    _check_aggregation_inputs(aggregation, max_completion_length, global_normaliser)
    dtype = compute_dtype(weights.dtype if weights.is_floating_point() else torch.float32)
    if aggregation == "seq_mean":
        return torch.tensor(float(weights.shape[0]), dtype=dtype, device=weights.device)
    if aggregation == "token_sum_norm":
        return torch.tensor(float(weights.shape[0] * max_completion_length), dtype=dtype, device=weights.device)
    if aggregation == "token_mean_global":
        return torch.as_tensor(global_normaliser, dtype=dtype, device=weights.device).reshape(())
    if aggregation == "token_mean":
        return completion_mask.sum(-1).to(dtype).sum()
    if aggregation == "token_mean_selected":
        return weights.to(dtype).sum(-1).sum()
    return (weights.to(dtype).sum(-1) > 0).sum().to(dtype)


def agg_loss(
    values: torch.Tensor, weights: torch.Tensor, completion_mask: torch.Tensor, aggregation: str, *,
    max_completion_length: int | None = None, global_normaliser: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce ``[B, T]`` per-token values ``l`` to a scalar. With ``w`` the weights (0 on
    padding), ``m`` the completion mask and rows ``i``::

        seq_mean             mean_i  sum_t(w*l) / sum_t(m)         (the paper's 1/|o_i|; TRL grpo)
        seq_mean_selected    mean over rows with sum_t(w) > 0 of  sum_t(w*l) / sum_t(w)
        token_mean           sum(w*l) / sum(m)                      (TRL bnpo)
        token_mean_selected  sum(w*l) / sum(w)
        token_sum_norm       sum(w*l) / (B * max_completion_length) (Dr. GRPO; TRL dr_grpo)
        token_mean_global    sum(w*l) / global_normaliser           (DAPO; TRL dapo)

    i.e. a numerator divided by :func:`aggregation_normaliser`. ``token_sum_norm`` divides by
    the configured completion budget, not the padded ``T``, so no row's length changes its
    tokens' weight. ``token_mean_global`` takes its denominator from outside the batch: for
    DAPO, the completion tokens of the whole optimizer step on every process, so that the
    losses of its micro-batches and processes add up to one token mean over the step. A zero
    denominator (an empty row, an empty selection) is replaced by 1, so the result is 0, still
    attached to the graph of ``values``, never NaN. Sums run over each row first, then over
    rows: a flat sum over ``B x T`` would group the additions differently for another padding
    length and change the last bits of the result.
    """
    normaliser = aggregation_normaliser(weights, completion_mask, aggregation,
                                        max_completion_length=max_completion_length,
                                        global_normaliser=global_normaliser)
    normaliser = torch.where(normaliser > 0, normaliser, torch.ones_like(normaliser))
    row_sums = (weights * values).sum(-1)
    if aggregation == "seq_mean":
        lengths = completion_mask.sum(-1).to(values.dtype)
        numerator = (row_sums / lengths.clamp(min=1)).sum()
    elif aggregation == "seq_mean_selected":
        # Soft weights may sum below 1: a row's own denominator is not clamped to 1.
        row_weights = weights.sum(-1)
        has_selection = row_weights > 0
        row_loss = row_sums / torch.where(has_selection, row_weights, torch.ones_like(row_weights))
        numerator = (row_loss * has_selection).sum()
    else:
        numerator = row_sums.sum()
    return numerator / normaliser


def _check_loss_inputs(logps, old_logps, advantages, completion_mask, ref_logps, beta, epsilon_low,
                       epsilon_high, importance_weights=None) -> torch.Tensor:
    """Validate ``grpo_loss``'s arguments; returns the completion mask as a bool tensor."""
    check_float("logps", logps)
    check_ndim("logps", logps, (2,))
    check_float("old_logps", old_logps)
    check_same_shape("old_logps", old_logps, "logps", logps)
    check_float("advantages", check_tensor("advantages", advantages))
    if advantages.shape not in (logps.shape[:1], logps.shape):
        raise ValueError(
            f"advantages must have shape [B]={tuple(logps.shape[:1])} or [B, T]={tuple(logps.shape)},"
            f" got {tuple(advantages.shape)}"
        )
    mask = as_bool_mask("completion_mask", completion_mask, logps.shape)
    for name, value in (("epsilon_low", epsilon_low), ("epsilon_high", epsilon_high), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if beta > 0 and ref_logps is None:
        raise ValueError("ref_logps is required when beta > 0")
    if ref_logps is not None:
        check_float("ref_logps", ref_logps)
        check_same_shape("ref_logps", ref_logps, "logps", logps)
    if importance_weights is not None:
        check_float("importance_weights", importance_weights)
        check_same_shape("importance_weights", importance_weights, "logps", logps)
    return mask


@torch.no_grad()
def _loss_metrics(ratio, advantages, weights, mask, kl, epsilon_low, epsilon_high) -> dict[str, torch.Tensor]:
    """The detached metrics ``grpo_loss`` returns (see its docstring)."""
    dtype = ratio.dtype
    selected = weights != 0
    num_selected = selected.sum()
    num_tokens = mask.sum()
    clipped_low = (ratio < 1 - epsilon_low) & (advantages < 0) & selected
    clipped_high = (ratio > 1 + epsilon_high) & (advantages > 0) & selected
    denominator = num_selected.clamp(min=1).to(dtype)
    tokens = num_tokens.clamp(min=1).to(dtype)
    return {
        "clip_fraction": (clipped_low | clipped_high).sum().to(dtype) / denominator,
        "clip_fraction_low": clipped_low.sum().to(dtype) / denominator,
        "clip_fraction_high": clipped_high.sum().to(dtype) / denominator,
        "kl": (kl * mask.to(dtype)).sum() / tokens if kl is not None else torch.zeros((), dtype=dtype, device=ratio.device),
        "selected_fraction": num_selected.to(dtype) / tokens,
        "num_completion_tokens": num_tokens.to(dtype),
        "num_selected_tokens": num_selected.to(dtype),
        "num_unselected_tokens": (num_tokens - num_selected).to(dtype),
    }


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    token_weights: torch.Tensor | None = None,
    ref_logps: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    aggregation: str = "seq_mean",
    mask_kl: bool = True,
    *,
    bias_correction_kl: bool = False,
    max_completion_length: int | None = None,
    global_normaliser: float | torch.Tensor | None = None,
    importance_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped GRPO loss on key tokens (Video-KTR) or on every token (vanilla GRPO).

    Per token (``rho = exp(logps - old_logps)``, ``A`` the advantage)::

        pg_t = -min(rho_t * A, clip(rho_t, 1 - epsilon_low, 1 + epsilon_high) * A)
        pg_t = iw_t * pg_t                                           (importance_weights)
        kl_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1            (k3 estimator, beta > 0)
        kl_t = rho_t * kl_t                                          (bias_correction_kl)
        loss = agg_loss(pg, w) + beta * agg_loss(kl, w_kl)

    ``importance_weights`` ``iw`` correct for a sampler other than the trainer (vLLM): the
    truncated sampler-to-trainer ratios of :func:`videoktr.core.importance.truncated_importance_weights`,
    applied to the policy-gradient term only, as TRL applies them. They are constants (no
    gradient flows through them).

    ``bias_correction_kl`` (TRL's ``use_bias_correction_kl``, DeepSeek-V3.2) weights the k3
    term by the importance ratio, so its gradient is the unbiased reverse-KL gradient; the
    ratio keeps its gradient, so this changes the KL gradient even on-policy, where
    ``rho = 1``. The ``kl`` metric stays the uncorrected k3 mean.

    Weights ``w`` are ``token_weights`` (the key-token mask, or soft weights) or, when None,
    ``completion_mask``; ``w`` is always 0 on padding. ``w_kl = w`` (``mask_kl=True``, as the
    official code) or the completion mask (``mask_kl=False``: the KL term regularises every
    generated token). ``aggregation`` is one of :func:`agg_loss`'s. Where nothing is selected
    the loss is 0, still part of the autograd graph, never NaN. Values on padding are ignored
    entirely, even NaN or inf.

    Args:
        logps: ``[B, T]`` log-probs of the completion tokens under the current policy (with grad).
        old_logps: ``[B, T]`` log-probs under the policy that sampled them (``logps.detach()``
            when there is a single update per batch).
        advantages: ``[B]`` per-completion or ``[B, T]`` per-token advantages.
        completion_mask: ``[B, T]``, true on generated tokens.
        token_weights: ``[B, T]`` bool mask or float weights, or None for every token.
        ref_logps: ``[B, T]`` reference-model log-probs; required when ``beta > 0``.
        beta, epsilon_low, epsilon_high: the KL coefficient and the clip range.
        aggregation, mask_kl: as above; ``max_completion_length`` (``token_sum_norm``) and
            ``global_normaliser`` (``token_mean_global``) as in :func:`agg_loss`.
        importance_weights: ``[B, T]`` per-token weights of the policy-gradient term, or None.

    Returns:
        ``(loss, metrics)``; metrics are detached 0-dim tensors: ``clip_fraction`` (share of
        weighted tokens whose ratio is clipped), ``clip_fraction_low``, ``clip_fraction_high``,
        ``kl`` (mean k3 KL over completion tokens, 0 without a reference), ``selected_fraction``
        (tokens with nonzero weight / completion tokens), ``num_completion_tokens``,
        ``num_selected_tokens`` and ``num_unselected_tokens``.
    """
    mask = _check_loss_inputs(logps, old_logps, advantages, completion_mask, ref_logps, beta, epsilon_low,
                              epsilon_high, importance_weights)
    aggregate = functools.partial(agg_loss, aggregation=aggregation, max_completion_length=max_completion_length,
                                  global_normaliser=global_normaliser)
    dtype = compute_dtype(logps.dtype)
    zeros = torch.zeros((), dtype=dtype, device=logps.device)
    # Sanitise padding before any arithmetic: where() alone would still let a NaN on padding
    # reach the gradient through exp().
    logps = torch.where(mask, logps.to(dtype), zeros)
    old_logps = torch.where(mask, old_logps.to(dtype), zeros)
    advantages = torch.where(mask, (advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages).to(dtype), zeros)
    if token_weights is None:
        weights = mask.to(dtype)
    else:
        check_same_shape("token_weights", check_tensor("token_weights", token_weights), "logps", logps)
        weights = torch.where(mask, token_weights.to(dtype), zeros)

    ratio = torch.exp(logps - old_logps)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    policy_loss = -torch.min(ratio * advantages, clipped_ratio * advantages)
    if importance_weights is not None:
        policy_loss = policy_loss * torch.where(mask, importance_weights.detach().to(dtype), zeros)
    loss = aggregate(policy_loss, weights, mask)

    kl = None
    if ref_logps is not None:
        ref_diff = torch.where(mask, ref_logps.to(dtype), zeros) - logps
        kl = torch.exp(ref_diff) - ref_diff - 1
        if beta > 0:
            kl_term = kl * ratio if bias_correction_kl else kl
            loss = loss + beta * aggregate(kl_term, weights if mask_kl else mask.to(dtype), mask)
    return loss, _loss_metrics(ratio, advantages, weights, mask, kl, epsilon_low, epsilon_high)
