"""Per-token attribution signals: counterfactual log-prob deltas and predictive entropy; and
each token's gradient weight, how much policy gradient it can carry at all.

The model-facing code (``videoktr.models``) runs the forward passes; these functions only turn
their outputs into scores, one score per generated token.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._checks import check_float, check_same_shape, check_tensor, compute_dtype

#: The three attribution signals, in the order tables, plots and configs list them.
SIGNALS = ("visual", "temporal", "entropy")

DEFAULT_CHUNK_SIZE = 1024


def logprob_delta(
    logps: torch.Tensor, cf_logps: torch.Tensor, signed: bool = False
) -> torch.Tensor:
    """How much each generated token's log-probability moves under a counterfactual input.

    ``signed=False`` (the paper, our default)::

        delta_t = | log p(y_t | x) - log p(y_t | x_cf) |

    ``signed=True`` (the official code)::

        delta_t =   log p(y_t | x) - log p(y_t | x_cf)

    where ``x_cf`` is the input with the video removed (visual signal) or its frames shuffled
    (temporal signal). A signed delta is large when the real video *raises* the token's
    probability; the absolute delta also ranks tokens whose probability rises without it.

    Args:
        logps: ``[B, T]`` log-probabilities of the generated tokens under the real input.
        cf_logps: ``[B, T]`` log-probabilities of the same tokens under the counterfactual.
            NaN marks a token for which no counterfactual exists and stays NaN in the output.
        signed: keep the sign instead of taking the absolute value.

    Returns:
        ``[B, T]`` deltas in at least float32 (float64 stays float64).
    """
    check_float("logps", logps)
    check_float("cf_logps", cf_logps)
    check_same_shape("cf_logps", cf_logps, "logps", logps)
    dtype = compute_dtype(torch.promote_types(logps.dtype, cf_logps.dtype))
    delta = logps.to(dtype) - cf_logps.to(dtype)
    return delta if signed else delta.abs()


def _check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")


def _entropy_from_log_probs(log_probs: torch.Tensor, probs: torch.Tensor | None = None) -> torch.Tensor:
    # A -inf logit (a token masked out of the vocabulary) has p = 0 and contributes 0, not NaN.
    probs = log_probs.exp() if probs is None else probs
    return -torch.where(probs > 0, probs * log_probs, 0.0).sum(-1)


def token_entropy(logits: torch.Tensor, chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """Entropy of the next-token distribution at each position, in nats.

    ::

        H_t = - sum_w p_t(w) log p_t(w),      p_t = softmax(z_t)

    computed from ``log_softmax`` (so large logits do not overflow) in at least float32, over
    chunks of ``chunk_size`` positions so that the upcast copy of the logits never exceeds
    ``chunk_size x vocab`` elements. Apply any sampling temperature to ``logits`` first.

    Args:
        logits: ``[..., V]`` logits of any float dtype.
        chunk_size: positions per chunk; ``None`` processes all positions at once.

    Returns:
        ``logits.shape[:-1]`` entropies in at least float32.
    """
    check_float("logits", logits)
    if logits.dim() < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a non-empty last (vocabulary) dimension, got {tuple(logits.shape)}")
    _check_chunk_size(chunk_size)
    dtype = compute_dtype(logits.dtype)
    flat = logits.reshape(-1, logits.shape[-1])
    step = chunk_size or max(flat.shape[0], 1)
    out = torch.empty(flat.shape[0], dtype=dtype, device=logits.device)
    for start in range(0, flat.shape[0], step):
        chunk = flat[start : start + step].to(dtype)
        out[start : start + step] = _entropy_from_log_probs(torch.log_softmax(chunk, dim=-1))
    return out.reshape(logits.shape[:-1])


class TokenLogStats(NamedTuple):
    """What one chunked ``log_softmax`` pass gives per position (see :func:`token_log_stats`)."""

    logps: torch.Tensor
    entropy: torch.Tensor | None
    gradient_weight: torch.Tensor | None


def _gradient_weight(probs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    # 1 - 2 p_y + sum_w p_w^2: the squared norm of softmax(z) - onehot(y).
    return 1.0 - 2.0 * probs.gather(-1, ids).squeeze(-1) + (probs * probs).sum(-1)


#: Positions per block of the no-grad statistics: their ``[block, V]`` temporaries stay small
#: beside a chunk whose log-probs (with gradient) the loss still holds.
_STATISTICS_BLOCK = 128


def _score_statistics(log_probs: torch.Tensor, ids: torch.Tensor, with_entropy: bool, with_gradient_weight: bool
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Entropy and gradient weight of a chunk's positions, block by block."""
    entropies, weights = [], []
    for start in range(0, log_probs.shape[0], _STATISTICS_BLOCK):
        block, block_ids = log_probs[start : start + _STATISTICS_BLOCK], ids[start : start + _STATISTICS_BLOCK]
        probs = block.exp()  # one exp serves both statistics: over the vocabulary it is their cost
        if with_entropy:
            entropies.append(_entropy_from_log_probs(block, probs))
        if with_gradient_weight:
            weights.append(_gradient_weight(probs, block_ids))
    return entropies, weights


def token_log_stats(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    chunk_size: int | None = DEFAULT_CHUNK_SIZE,
    *,
    with_entropy: bool = True,
    with_gradient_weight: bool = False,
) -> TokenLogStats:
    """Log-probability of the given tokens, the entropy and the gradient weight, from one
    ``log_softmax`` per chunk of positions::

        logp_t = log softmax(z_t)[y_t]
        H_t    = - sum_w p_t(w) log p_t(w)
        g_t    = 1 - 2 p_t(y_t) + sum_w p_t(w)^2  =  || d logp_t / d z_t ||^2

    ``g_t`` is the squared norm of the gradient of the token's log-probability with respect to
    its logits (``softmax(z_t) - onehot(y_t)``): near 0 for a near-certain token, which therefore
    carries almost no policy gradient whatever its advantage. All three come from the same
    normalised chunk, so neither statistic costs an extra pass, and no ``[..., V]`` tensor wider
    than a chunk is made. The log-probabilities keep the autograd graph of ``logits``; the
    entropy and the gradient weight are scores, computed without gradient.

    Args:
        logits: ``[..., V]`` logits aligned with ``token_ids`` (position t predicts ``y_t``).
        token_ids: ``logits.shape[:-1]`` integer ids in ``[0, V)``; put any id there on padding.
        chunk_size: positions per chunk; ``None`` processes all positions at once.
        with_entropy, with_gradient_weight: which statistics to compute (None when not).

    Returns:
        ``TokenLogStats(logps, entropy, gradient_weight)``, each ``logits.shape[:-1]`` in at
        least float32.
    """
    check_float("logits", logits)
    check_tensor("token_ids", token_ids)
    if token_ids.dtype.is_floating_point or token_ids.dtype == torch.bool:
        raise ValueError(f"token_ids must be an integer tensor, got dtype {token_ids.dtype}")
    if logits.dim() < 1 or token_ids.shape != logits.shape[:-1]:
        raise ValueError(
            f"token_ids must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])},"
            f" got {tuple(token_ids.shape)}"
        )
    _check_chunk_size(chunk_size)
    vocab = logits.shape[-1]
    if token_ids.numel() and (int(token_ids.min()) < 0 or int(token_ids.max()) >= vocab):
        raise ValueError(
            f"token_ids must lie in [0, {vocab}) (the logits' vocabulary), got values in"
            f" [{int(token_ids.min())}, {int(token_ids.max())}]; replace padding ids such as -100"
        )
    dtype = compute_dtype(logits.dtype)
    flat_logits = logits.reshape(-1, vocab)
    flat_ids = token_ids.reshape(-1, 1).long()
    step = chunk_size or max(flat_logits.shape[0], 1)
    logp_chunks, entropy_chunks, weight_chunks = [], [], []
    for start in range(0, flat_logits.shape[0], step):
        ids = flat_ids[start : start + step]
        log_probs = torch.log_softmax(flat_logits[start : start + step].to(dtype), dim=-1)
        logp_chunks.append(log_probs.gather(-1, ids).squeeze(-1))
        if with_entropy or with_gradient_weight:
            with torch.no_grad():
                entropies, weights = _score_statistics(log_probs.detach(), ids, with_entropy, with_gradient_weight)
            entropy_chunks.extend(entropies)
            weight_chunks.extend(weights)
    shape = token_ids.shape

    def joined(chunks: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(chunks).reshape(shape) if chunks else logits.new_zeros(shape, dtype=dtype)

    return TokenLogStats(
        joined(logp_chunks),
        joined(entropy_chunks) if with_entropy else None,
        joined(weight_chunks) if with_gradient_weight else None,
    )


def token_logps_and_entropy(
    logits: torch.Tensor,
    token_ids: torch.Tensor,
    chunk_size: int | None = DEFAULT_CHUNK_SIZE,
    with_entropy: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probability of the given tokens and the entropy, from one ``log_softmax`` per chunk.

    ::

        logp_t = log softmax(z_t)[y_t]
        H_t    = - sum_w p_t(w) log p_t(w)

    Both come from the same normalised chunk, so the entropy signal costs no extra pass. The
    log-probabilities keep the autograd graph of ``logits``; the entropy is a score, computed
    without gradient. (:func:`token_log_stats` also gives each token's gradient weight.)

    Args:
        logits: ``[..., V]`` logits aligned with ``token_ids`` (position t predicts ``y_t``).
        token_ids: ``logits.shape[:-1]`` integer ids in ``[0, V)``; put any id there on padding.
        chunk_size: positions per chunk; ``None`` processes all positions at once.
        with_entropy: set False to skip the entropy (the second return value is then None).

    Returns:
        ``(logps, entropy)``, each ``logits.shape[:-1]`` in at least float32.
    """
    stats = token_log_stats(logits, token_ids, chunk_size, with_entropy=with_entropy)
    return stats.logps, stats.entropy
