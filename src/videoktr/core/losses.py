"""The clipped GRPO objective with per-token weights (the key-token mask or soft weights)."""

from __future__ import annotations

import torch

from ._checks import as_bool_mask, check_float, check_ndim, check_same_shape, check_tensor, compute_dtype

AGGREGATIONS = ("seq_mean", "seq_mean_selected", "token_mean", "token_mean_selected")


def _aggregate(
    values: torch.Tensor, weights: torch.Tensor, completion_mask: torch.Tensor, aggregation: str
) -> torch.Tensor:
    """Reduce ``[B, T]`` per-token values to a scalar with one of the four aggregations.

    Every denominator is clamped to at least 1 so an empty row or an empty selection yields 0
    (still attached to the graph of ``values``), never NaN. Sums run over each row first, then
    over rows: a flat sum over ``B x T`` would group the additions differently for another
    padding length and change the last bits of the result.
    """
    row_sums = (weights * values).sum(-1)
    row_weights = weights.sum(-1)
    lengths = completion_mask.sum(-1).to(values.dtype)
    if aggregation == "seq_mean":
        return (row_sums / lengths.clamp(min=1)).mean()
    if aggregation == "token_mean":
        return row_sums.sum() / lengths.sum().clamp(min=1)
    # Soft weights may sum below 1, so the "selected" denominators are not clamped to 1; a zero
    # sum is replaced by 1 (its numerator is 0 then).
    if aggregation == "token_mean_selected":
        total = row_weights.sum()
        return row_sums.sum() / torch.where(total > 0, total, torch.ones_like(total))
    # seq_mean_selected: mean over rows that select something of the row's weighted mean.
    has_selection = row_weights > 0
    row_loss = row_sums / torch.where(has_selection, row_weights, torch.ones_like(row_weights))
    return (row_loss * has_selection).sum() / has_selection.sum().clamp(min=1)


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
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped GRPO loss on key tokens (Video-KTR) or on every token (vanilla GRPO).

    Per token (``rho = exp(logps - old_logps)``, ``A`` the advantage)::

        pg_t = -min(rho_t * A, clip(rho_t, 1 - epsilon_low, 1 + epsilon_high) * A)
        kl_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1            (k3 estimator, beta > 0)
        l_t  = pg_t + beta * kl_t

    Weights ``w`` are ``token_weights`` (the key-token mask, or soft weights) or, when None,
    ``completion_mask``; ``w`` is always 0 on padding. With ``mask_kl=False`` the KL term is
    weighted by ``completion_mask`` instead, so it regularises every generated token. The
    aggregations, with ``m`` the completion mask and rows ``i``::

        seq_mean             mean_i  sum_t(w*l) / sum_t(m)         (the paper's 1/|o_i|; default)
        seq_mean_selected    mean over rows with sum_t(w) > 0 of  sum_t(w*l) / sum_t(w)
        token_mean           sum(w*l) / sum(m)
        token_mean_selected  sum(w*l) / sum(w)

    (With ``mask_kl=False``, the policy term and the KL term are each aggregated with their own
    weights.) Where nothing is selected the loss is 0, still part of the autograd graph, never
    NaN. Values on padding are ignored entirely, even NaN or inf.

    Args:
        logps: ``[B, T]`` log-probs of the completion tokens under the current policy (with grad).
        old_logps: ``[B, T]`` log-probs under the policy that sampled them (``logps.detach()``
            when there is a single update per batch).
        advantages: ``[B]`` per-completion or ``[B, T]`` per-token advantages.
        completion_mask: ``[B, T]``, true on generated tokens.
        token_weights: ``[B, T]`` bool mask or float weights, or None for every token.
        ref_logps: ``[B, T]`` reference-model log-probs; required when ``beta > 0``.
        beta: KL coefficient.
        epsilon_low, epsilon_high: the clip range ``[1 - epsilon_low, 1 + epsilon_high]``.
        aggregation: one of ``seq_mean``, ``seq_mean_selected``, ``token_mean``,
            ``token_mean_selected``.
        mask_kl: apply ``token_weights`` to the KL term too (default, as the official code).

    Returns:
        ``(loss, metrics)``; metrics are detached 0-dim tensors: ``clip_fraction`` (share of
        weighted tokens whose ratio is clipped), ``clip_fraction_low``, ``clip_fraction_high``,
        ``kl`` (mean k3 KL over completion tokens, 0 without a reference), ``selected_fraction``
        (tokens with nonzero weight / completion tokens), ``num_completion_tokens``,
        ``num_selected_tokens`` and ``num_unselected_tokens``.
    """
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
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}; got {aggregation!r}")
    for name, value in (("epsilon_low", epsilon_low), ("epsilon_high", epsilon_high), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if beta > 0 and ref_logps is None:
        raise ValueError("ref_logps is required when beta > 0")
    if ref_logps is not None:
        check_float("ref_logps", ref_logps)
        check_same_shape("ref_logps", ref_logps, "logps", logps)

    dtype = compute_dtype(logps.dtype)
    zeros = torch.zeros((), dtype=dtype, device=logps.device)
    # Sanitise padding before any arithmetic: where() alone would still let a NaN on padding
    # reach the gradient through exp().
    logps = torch.where(mask, logps.to(dtype), zeros)
    old_logps = torch.where(mask, old_logps.to(dtype), zeros)
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    advantages = torch.where(mask, advantages.to(dtype), zeros)

    if token_weights is None:
        weights = mask.to(dtype)
    else:
        token_weights = check_tensor("token_weights", token_weights)
        check_same_shape("token_weights", token_weights, "logps", logps)
        weights = torch.where(mask, token_weights.to(dtype), zeros)
    mask_weights = mask.to(dtype)

    ratio = torch.exp(logps - old_logps)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    policy_loss = -torch.min(ratio * advantages, clipped_ratio * advantages)
    loss = _aggregate(policy_loss, weights, mask, aggregation)

    kl = None
    if ref_logps is not None:
        ref_diff = torch.where(mask, ref_logps.to(dtype), zeros) - logps
        kl = torch.exp(ref_diff) - ref_diff - 1
        if beta > 0:
            kl_weights = weights if mask_kl else mask_weights
            loss = loss + beta * _aggregate(kl, kl_weights, mask, aggregation)

    with torch.no_grad():
        selected = weights != 0
        num_selected = selected.sum()
        num_tokens = mask.sum()
        clipped_low = (ratio < 1 - epsilon_low) & (advantages < 0) & selected
        clipped_high = (ratio > 1 + epsilon_high) & (advantages > 0) & selected
        denominator = num_selected.clamp(min=1).to(dtype)
        metrics = {
            "clip_fraction": (clipped_low | clipped_high).sum().to(dtype) / denominator,
            "clip_fraction_low": clipped_low.sum().to(dtype) / denominator,
            "clip_fraction_high": clipped_high.sum().to(dtype) / denominator,
            "kl": (kl * mask_weights).sum() / num_tokens.clamp(min=1).to(dtype) if kl is not None else zeros.clone(),
            "selected_fraction": num_selected.to(dtype) / num_tokens.clamp(min=1).to(dtype),
            "num_completion_tokens": num_tokens.to(dtype),
            "num_selected_tokens": num_selected.to(dtype),
            "num_unselected_tokens": (num_tokens - num_selected).to(dtype),
        }
    return loss, metrics
