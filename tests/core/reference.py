"""Plain, loop-by-loop re-derivations of the core formulas from DESIGN.md.

They share no code with ``videoktr.core``: the tests compare the vectorised implementations
against these on random inputs.
"""

from __future__ import annotations

import math

import torch


def unit_rows(num_rows: int, scope: str, group_size: int | None) -> list[list[int]]:
    if scope == "sequence":
        return [[row] for row in range(num_rows)]
    if scope == "group":
        return [list(range(g, g + group_size)) for g in range(0, num_rows, group_size)]
    return [list(range(num_rows))]


def ranked_tokens(scores, mask, rows):
    """A unit's available tokens as ``(score, row, t)``, highest score first, ties to the earlier
    (row, t)."""
    tokens = [
        (float(scores[r, t]), r, t)
        for r in rows
        for t in range(scores.shape[1])
        if bool(mask[r, t]) and not math.isnan(float(scores[r, t]))
    ]
    return sorted(tokens, key=lambda item: (-item[0], item[1], item[2]))


def topk_select(scores, mask, ratio, scope, group_size=None):
    """Exactly k = ceil(r*n - 1e-6) highest available scores per unit, ties to row-major order."""
    selected = torch.zeros(scores.shape, dtype=torch.bool)
    for rows in unit_rows(scores.shape[0], scope, group_size):
        tokens = ranked_tokens(scores, mask, rows)
        k = max(0, min(len(tokens), math.ceil(ratio * len(tokens) - 1e-6)))
        for _, r, t in tokens[:k]:
            selected[r, t] = True
    return selected


def quantile_select(scores, mask, ratio, scope, group_size=None):
    """The official rule: score >= torch.quantile(available scores of the unit, 1 - ratio)."""
    selected = torch.zeros(scores.shape, dtype=torch.bool)
    if ratio == 0:
        return selected
    for rows in unit_rows(scores.shape[0], scope, group_size):
        unit_scores = scores[rows]
        available = mask[rows].bool() & ~torch.isnan(unit_scores)
        if not available.any():
            continue
        threshold = torch.quantile(unit_scores[available], 1 - ratio)
        selected[rows] = available & (unit_scores >= threshold)
    return selected


def mass_select(scores, mask, mass, min_ratio, max_ratio, scope, group_size=None):
    """The fewest top tokens holding a share ``mass`` of the unit's positive score mass,
    clamped to [ceil(min_ratio*n - 1e-6), ceil(max_ratio*n - 1e-6)]; ties to row-major order."""
    selected = torch.zeros(scores.shape, dtype=torch.bool)
    for rows in unit_rows(scores.shape[0], scope, group_size):
        tokens = ranked_tokens(scores, mask, rows)
        total = 0.0
        for value, _, _ in tokens:
            total += max(value, 0.0)
        k, running = 0, 0.0
        if mass * total > 0:
            while running < mass * total:
                running += max(tokens[k][0], 0.0)
                k += 1
        n = len(tokens)
        floor = max(0, math.ceil(min_ratio * n - 1e-6))
        cap = max(0, math.ceil(max_ratio * n - 1e-6))
        for _, r, t in tokens[: min(max(k, floor), cap)]:
            selected[r, t] = True
    return selected


def grpo_loss_reference(
    logps, old_logps, advantages, mask, weights, ref_logps, beta, eps_low, eps_high, aggregation, mask_kl,
    max_completion_length=None, global_normaliser=None, bias_correction_kl=False,
):
    """The loss of docs/method.md written token by token in float64."""
    rows, length = logps.shape
    logps = logps.detach()
    mask = mask.bool()
    weights = mask.double() if weights is None else weights.double()
    per_row_pg, per_row_kl = [], []
    for i in range(rows):
        pg_terms, kl_terms = [], []
        for t in range(length):
            if not mask[i, t]:
                continue
            a = float(advantages[i] if advantages.dim() == 1 else advantages[i, t])
            rho = math.exp(float(logps[i, t]) - float(old_logps[i, t]))
            clipped = min(max(rho, 1 - eps_low), 1 + eps_high)
            pg = -min(rho * a, clipped * a)
            kl = 0.0
            if ref_logps is not None:
                d = float(ref_logps[i, t]) - float(logps[i, t])
                kl = math.exp(d) - d - 1
                if bias_correction_kl:
                    kl *= rho
            w = float(weights[i, t])
            pg_terms.append((w, pg))
            kl_terms.append((w if mask_kl else 1.0, kl))
        per_row_pg.append(pg_terms)
        per_row_kl.append(kl_terms)

    def aggregate(per_row):
        if aggregation == "token_sum_norm":
            return sum(w * v for row in per_row for w, v in row) / (rows * max_completion_length)
        if aggregation == "token_mean_global":
            return sum(w * v for row in per_row for w, v in row) / global_normaliser
        if aggregation == "seq_mean":
            return sum(sum(w * v for w, v in row) / max(len(row), 1) for row in per_row) / rows
        if aggregation == "token_mean":
            return sum(w * v for row in per_row for w, v in row) / max(sum(len(r) for r in per_row), 1)
        if aggregation == "token_mean_selected":
            total = sum(w for row in per_row for w, _ in row)
            return sum(w * v for row in per_row for w, v in row) / total if total > 0 else 0.0
        row_means = [
            sum(w * v for w, v in row) / sum(w for w, _ in row)
            for row in per_row
            if sum(w for w, _ in row) > 0
        ]
        return sum(row_means) / len(row_means) if row_means else 0.0

    loss = aggregate(per_row_pg)
    if beta > 0:
        loss += beta * aggregate(per_row_kl)
    return loss
