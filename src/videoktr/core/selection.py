"""Key-token selection: from per-signal scores to the mask (or soft weights) of the loss.

A *unit* is the set of tokens one ratio is applied to:

* ``sequence``: one completion (one row),
* ``group``: the ``G`` completions of one prompt (rows ``g*G .. g*G+G-1``), our default,
* ``batch``: every row.

Inside a unit, tokens are ordered row-major (row, then position): that order breaks ties.
A token is *available* for a signal when it is a completion token (``completion_mask``) and its
score is not NaN; NaN means the signal does not exist for it (an image has no temporal signal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ._checks import (
    SCOPES,
    as_bool_mask,
    check_float,
    check_group_size,
    check_ndim,
    check_ratio,
    check_scope,
    compute_dtype,
)

__all__ = ["SCOPES", "SELECTION_METHODS", "SOFT_WEIGHTINGS", "num_selected", "select_key_tokens",
           "select_key_tokens_by_mass", "soft_token_weights", "unit_quantile"]

SELECTION_METHODS = ("topk", "quantile")
SOFT_WEIGHTINGS = ("softmax", "sigmoid", "linear", "exponential")
# Ratios are user floats: 0.2 * 10 is 2.0000000000000004, whose ceil would be 3.
_RATIO_SLACK = 1e-6


def num_selected(ratio: float, num_available: int) -> int:
    """``k = ceil(ratio * n - 1e-6)``: how many of ``n`` available tokens a unit selects."""
    return max(0, min(num_available, math.ceil(ratio * num_available - _RATIO_SLACK)))


def _normalise_scores(
    scores: Mapping[str, torch.Tensor] | torch.Tensor,
) -> dict[str, torch.Tensor]:
    if isinstance(scores, torch.Tensor):
        return {"score": scores}
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping of signal name to [B, T] tensor")
    return dict(scores)


def _normalise_ratios(ratio: float | Mapping[str, float], signals: list[str]) -> dict[str, float]:
    if isinstance(ratio, Mapping):
        missing = [name for name in signals if name not in ratio]
        extra = [name for name in ratio if name not in signals]
        if missing or extra:
            raise ValueError(
                f"ratio must give one value per signal {signals}; missing {missing}, unknown {extra}"
            )
        return {name: check_ratio(f"ratio[{name!r}]", ratio[name]) for name in signals}
    value = check_ratio("ratio", ratio)
    return {name: value for name in signals}


def _check_inputs(
    scores: Mapping[str, torch.Tensor] | torch.Tensor,
    completion_mask: torch.Tensor,
    scope: str,
    group_size: int | None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    signals = _normalise_scores(scores)
    check_scope(scope)
    first_name, first = next(iter(signals.items()))
    for name, tensor in signals.items():
        check_float(f"scores[{name!r}]", tensor)
        check_ndim(f"scores[{name!r}]", tensor, (2,))
        if tensor.shape != first.shape:
            raise ValueError(
                f"scores[{name!r}] has shape {tuple(tensor.shape)} but scores[{first_name!r}]"
                f" has {tuple(first.shape)}"
            )
    mask = as_bool_mask("completion_mask", completion_mask, first.shape)
    check_group_size(group_size, first.shape[0], required=scope == "group")
    return signals, mask


def _to_units(tensor: torch.Tensor, scope: str, group_size: int | None) -> torch.Tensor:
    """``[B, T]`` -> ``[U, L]``, one row per unit, tokens in row-major order."""
    rows, length = tensor.shape
    if scope == "sequence":
        return tensor
    if scope == "group":
        return tensor.reshape(rows // group_size, group_size * length)
    return tensor.reshape(1, rows * length)


def _order_available_first(values: torch.Tensor, available: torch.Tensor, descending: bool) -> torch.Tensor:
    """Per unit, indices that sort available tokens by value (stable) and put the rest last.

    Two stable sorts rather than filling unavailable slots with -inf, so that a genuine -inf
    (or +inf) score still ranks correctly against them.
    """
    filled = values.masked_fill(~available, 0.0)
    order = torch.sort(filled, dim=-1, descending=descending, stable=True).indices
    unavailable_last = torch.sort((~available.gather(-1, order)).to(torch.uint8), dim=-1, stable=True).indices
    return order.gather(-1, unavailable_last)


def _counts_at_ratio(counts: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per unit, ``ceil(ratio * n - 1e-6)`` of its ``n`` available tokens (``num_selected``)."""
    return torch.clamp(torch.ceil(counts.to(torch.float64) * ratio - _RATIO_SLACK), min=0).to(counts.dtype)


def _first_k(order: torch.Tensor, k: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Per unit, the mask of the first ``k`` tokens of ``order``."""
    ranks = torch.arange(order.shape[-1], device=order.device).expand_as(order)
    return torch.zeros_like(available).scatter(-1, order, ranks < k.unsqueeze(-1))


def _topk_units(values: torch.Tensor, available: torch.Tensor, ratio: float) -> torch.Tensor:
    order = _order_available_first(values, available, descending=True)
    return _first_k(order, _counts_at_ratio(available.sum(-1), ratio), available)


def unit_quantile(values: torch.Tensor, available: torch.Tensor, q: float) -> torch.Tensor:
    """Per unit, the ``q``-quantile of the available values, as ``torch.quantile`` computes it
    (linear interpolation between order statistics); NaN for a unit with nothing available.

    Written out rather than calling ``torch.quantile`` per unit: one batched sort serves every
    unit, and ``torch.quantile`` refuses inputs above 16M elements.
    """
    order = _order_available_first(values, available, descending=False)
    ascending = values.gather(-1, order)
    counts = available.sum(-1)
    # torch.quantile rounds q to the input's dtype, then forms the rank position in float64:
    # doing the same keeps the threshold bit-identical to it (and to the official code).
    q_rounded = torch.tensor(q, dtype=values.dtype, device=values.device).double()
    position = q_rounded * (counts - 1).clamp(min=0)
    lower = position.floor().long()
    upper = position.ceil().long()
    weight = (position - lower).to(values.dtype)
    low_value = ascending.gather(-1, lower.unsqueeze(-1)).squeeze(-1)
    high_value = ascending.gather(-1, upper.unsqueeze(-1)).squeeze(-1)
    result = torch.lerp(low_value, high_value, weight)
    return result.masked_fill(counts == 0, float("nan"))


def _quantile_units(values: torch.Tensor, available: torch.Tensor, ratio: float) -> torch.Tensor:
    if ratio == 0.0:
        return torch.zeros_like(available)
    threshold = unit_quantile(values, available, 1.0 - ratio)
    return available & (values >= threshold.unsqueeze(-1))


def select_key_tokens(
    scores: Mapping[str, torch.Tensor] | torch.Tensor,
    completion_mask: torch.Tensor,
    ratio: float | Mapping[str, float] = 0.2,
    scope: str = "group",
    group_size: int | None = None,
    method: str = "topk",
) -> torch.Tensor:
    """The key-token mask: the union over signals of each signal's top tokens per unit.

    For each signal ``s`` with ratio ``r_s`` and each unit holding ``n`` available tokens::

        topk:      S_s = the k = ceil(r_s * n - 1e-6) available tokens with the highest scores,
                   ties going to the earlier token in row-major order
        quantile:  S_s = { available t : score_t >= quantile(available scores, 1 - r_s) }
                   (the official code's rule; linear interpolation, as torch.quantile; ties can
                   make it select more than k tokens)

        mask = OR_s S_s

    A ratio of 0 selects nothing and a ratio of 1 selects every available token, in both
    methods. Padding (``completion_mask == 0``) and NaN scores are never selected.

    Args:
        scores: signal name -> ``[B, T]`` float scores (a bare tensor counts as one signal).
        completion_mask: ``[B, T]``, true (or 1) on generated tokens, false on padding.
        ratio: one ratio for every signal, or a mapping with one ratio per signal.
        scope: ``"sequence"``, ``"group"`` or ``"batch"``.
        group_size: ``G``; required for ``scope="group"``.
        method: ``"topk"`` (exact k, our default) or ``"quantile"``.

    Returns:
        ``[B, T]`` bool mask.
    """
    signals, mask = _check_inputs(scores, completion_mask, scope, group_size)
    ratios = _normalise_ratios(ratio, list(signals))
    if method not in SELECTION_METHODS:
        raise ValueError(f"method must be one of {', '.join(SELECTION_METHODS)}; got {method!r}")
    select_units = _topk_units if method == "topk" else _quantile_units

    selected = torch.zeros_like(mask)
    for name, tensor in signals.items():
        values = _to_units(tensor.to(compute_dtype(tensor.dtype)), scope, group_size)
        available = _to_units(mask, scope, group_size) & ~torch.isnan(values)
        selected |= select_units(values, available, ratios[name]).reshape(mask.shape)
    return selected & mask


def _check_share(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _mass_units(values: torch.Tensor, available: torch.Tensor, mass: float, min_ratio: float,
                max_ratio: float) -> torch.Tensor:
    """Per unit (row of ``[U, L]`` ``values``), the tokens the mass rule selects (see
    :func:`select_key_tokens_by_mass`)."""
    order = _order_available_first(values, available, descending=True)
    counts = available.sum(-1)
    positive = values.clamp(min=0).masked_fill(~available, 0.0).to(torch.float64)
    cumulative = positive.gather(-1, order).cumsum(-1)
    target = mass * cumulative[..., -1:]  # the total is the cumulative sum's end: p = 1 reaches it exactly
    below = (cumulative < target) & (torch.arange(values.shape[-1], device=values.device) < counts.unsqueeze(-1))
    by_mass = torch.where(target.squeeze(-1) > 0, below.sum(-1) + 1, 0)
    k = torch.minimum(torch.maximum(by_mass, _counts_at_ratio(counts, min_ratio)), _counts_at_ratio(counts, max_ratio))
    return _first_k(order, k, available)


def select_key_tokens_by_mass(
    scores: Mapping[str, torch.Tensor] | torch.Tensor,
    completion_mask: torch.Tensor,
    mass: float = 0.5,
    min_ratio: float = 0.05,
    max_ratio: float = 0.5,
    scope: str = "group",
    group_size: int | None = None,
) -> torch.Tensor:
    """The key-token mask with a ratio each unit sets for itself: per signal, the fewest top
    tokens that hold a share ``p`` of the unit's score mass, within a floor and a cap.

    For each signal and each unit with ``n`` available tokens, scores in descending order
    ``s_(1) >= ... >= s_(n)`` (ties to the earlier token in row-major order, as in
    :func:`select_key_tokens`) and ``s+ = max(s, 0)`` (a negative signed delta adds no mass)::

        k_mass = min { k >= 0 : sum_{i <= k} s+_(i) >= p * sum_{i <= n} s+_(i) }   (0 if the sum is 0)
        k      = clamp(k_mass, ceil(r_min * n - 1e-6), ceil(r_max * n - 1e-6))
        S      = the top k tokens;  mask = OR over signals of S

    A concentrated signal (a few tokens hold most of the mass) selects few tokens, a diffuse
    one many; ``k`` never falls as ``p`` grows. With ``r_min = r_max = r`` it is the fixed top-r
    rule. Padding (``completion_mask == 0``) and NaN scores are never selected.

    Args:
        scores, completion_mask, scope, group_size: as in :func:`select_key_tokens`.
        mass: ``p`` in [0, 1].
        min_ratio, max_ratio: the floor ``r_min`` and the cap ``r_max``, ``0 <= r_min <= r_max <= 1``.

    Returns:
        ``[B, T]`` bool mask.
    """
    signals, mask = _check_inputs(scores, completion_mask, scope, group_size)
    mass = _check_share("mass", mass)
    min_ratio, max_ratio = _check_share("min_ratio", min_ratio), _check_share("max_ratio", max_ratio)
    if min_ratio > max_ratio:
        raise ValueError(f"min_ratio ({min_ratio}) must not exceed max_ratio ({max_ratio})")
    selected = torch.zeros_like(mask)
    for tensor in signals.values():
        values = _to_units(tensor.to(compute_dtype(tensor.dtype)), scope, group_size)
        available = _to_units(mask, scope, group_size) & ~torch.isnan(values)
        selected |= _mass_units(values, available, mass, min_ratio, max_ratio).reshape(mask.shape)
    return selected & mask


def _unit_ranks(values: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Per unit, the normalised rank ``u = rank / (n - 1)`` of each available token (0 for the
    highest score, ties to the earlier token; ``u = 0`` when ``n = 1``); unavailable tokens get 1."""
    order = _order_available_first(values, available, descending=True)
    positions = torch.arange(values.shape[-1], device=values.device, dtype=values.dtype).expand_as(order)
    ranks = torch.empty_like(values).scatter(-1, order, positions)
    spans = (available.sum(-1, keepdim=True) - 1).clamp(min=1).to(values.dtype)
    return torch.where(available, ranks / spans, torch.ones_like(values))


def _standardised_gap(values: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Per unit, ``(s - max s) / std s`` over the available tokens (<= 0; 0 at the top)."""
    counts = available.sum(-1, keepdim=True).clamp(min=1).to(values.dtype)
    filled = values.masked_fill(~available, 0.0)
    mean = filled.sum(-1, keepdim=True) / counts
    variance = (((values - mean) ** 2).masked_fill(~available, 0.0)).sum(-1, keepdim=True) / counts
    top = values.masked_fill(~available, float("-inf")).amax(-1, keepdim=True)
    gap = (values - top) / (variance.sqrt() + 1e-8)
    return gap.masked_fill(~available, float("-inf"))


DEFAULT_SOFT_TEMPERATURE = {"softmax": 1.0, "sigmoid": 0.05, "linear": None, "exponential": None}


def soft_token_weights(
    scores: Mapping[str, torch.Tensor] | torch.Tensor,
    completion_mask: torch.Tensor,
    weighting: str = "sigmoid",
    ratio: float | Mapping[str, float] = 0.2,
    scope: str = "group",
    group_size: int | None = None,
    temperature: float | None = None,
    combine: str = "max",
) -> torch.Tensor:
    """Soft per-token weights in [0, 1]: the paper's ablation against the hard top-r mask.

    Per signal and unit, with ``n`` available tokens, ``u_t = rank_t / (n - 1)`` the normalised
    rank (0 for the highest score, ties to the earlier token) and
    ``z_t = (s_t - max s) / std(s)`` the standardised gap to the top score::

        linear:       w_t = 1 - u_t
        exponential:  w_t = 2 ** (-u_t / r)                 half weight at the top-r boundary
        sigmoid:      w_t = sigmoid((r - u_t) / tau)        half weight at the top-r boundary;
                                                            tau -> 0 recovers the hard mask
        softmax:      w_t = softmax(z / tau)_t / max_t softmax(z / tau)_t = exp(z_t / tau)

    ``tau`` is ``temperature`` (defaults: sigmoid 0.05, softmax 1.0). The three rank-based
    weightings ignore the scores' scale, like the official code's rank-sigmoid; softmax keeps it.
    A signal with ratio 0 contributes weight 0. Signals are combined by ``max`` (the soft
    union, default) or ``mean``. Padding and NaN scores get weight 0 from that signal.

    Args:
        scores, completion_mask, ratio, scope, group_size: as in :func:`select_key_tokens`.
        weighting: ``softmax``, ``sigmoid``, ``linear`` or ``exponential``.
        temperature: ``tau`` for sigmoid and softmax; must be positive.
        combine: ``max`` or ``mean`` over signals.

    Returns:
        ``[B, T]`` float weights in [0, 1], zero on padding.
    """
    signals, mask = _check_inputs(scores, completion_mask, scope, group_size)
    ratios = _normalise_ratios(ratio, list(signals))
    if weighting not in SOFT_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(SOFT_WEIGHTINGS)}; got {weighting!r}")
    if combine not in ("max", "mean"):
        raise ValueError(f"combine must be 'max' or 'mean'; got {combine!r}")
    tau = DEFAULT_SOFT_TEMPERATURE[weighting] if temperature is None else temperature
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")

    per_signal = []
    for name, tensor in signals.items():
        values = _to_units(tensor.to(compute_dtype(tensor.dtype)), scope, group_size)
        available = _to_units(mask, scope, group_size) & ~torch.isnan(values)
        r = ratios[name]
        if r == 0.0:
            weights = torch.zeros_like(values)
        elif weighting == "softmax":
            weights = torch.exp(_standardised_gap(values, available) / tau)
        else:
            u = _unit_ranks(values, available)
            if weighting == "linear":
                weights = 1.0 - u
            elif weighting == "exponential":
                weights = torch.exp2(-u / r)
            else:
                weights = torch.sigmoid((r - u) / tau)
        per_signal.append(torch.where(available, weights, 0.0).reshape(mask.shape))
    stacked = torch.stack(per_signal)
    combined = stacked.amax(0) if combine == "max" else stacked.mean(0)
    return torch.where(mask, combined, 0.0)
