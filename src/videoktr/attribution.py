"""KeyTokenAttributor: per-token visual, temporal and entropy scores for G completions of a prompt.

    attributor = KeyTokenAttributor(model, processor)
    scores = attributor.score(prompt_inputs, completion_ids, completion_mask)
    key_tokens = attributor.select(scores, completion_mask, ratio=0.2)

One ``score`` call runs the vision encoder once, the prompt prefix once per input variant
(real, no-video, each shuffle), and the ``G`` completions as one batch on the cached prefix.
``counterfactual_logps`` and ``score_from_real`` split ``score`` for a caller that runs the
real input itself (the trainer's loss forward): only the counterfactual passes run here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .core._checks import as_bool_mask
from .core.permutations import sample_derangements
from .core.selection import select_key_tokens
from .core.signals import DEFAULT_CHUNK_SIZE, TokenLogStats, logprob_delta
from .models import TEMPORAL_MODES, VISUAL_MODES, get_adapter

SIGNALS = ("visual", "temporal", "entropy")


class KeyTokenAttributor:
    """Scores every generated token by how much it depends on the video, on the frame order,
    and by the model's uncertainty, for one prompt and its ``G`` completions.

    Args:
        model: a Qwen2-VL, Qwen2.5-VL or Qwen3-VL ``...ForConditionalGeneration``.
        processor: the model's processor (kept for callers that need its tokenizer; scoring
            itself works on the processor's output).
        visual_mode: ``zero_embeddings`` (default), ``drop_tokens`` or ``zero_pixels``: how the
            video is removed (see ``QwenVLAdapter.visual_counterfactual``).
        temporal_mode: ``permute_groups`` (default, exact and free of re-encoding) or
            ``raw_frames`` (permute frames and re-encode, the official behaviour).
        num_shuffles: ``K``; the temporal delta is the mean over ``K`` distinct derangements.
        seed: seeds the derangements; successive ``score`` calls continue the same stream.
        signals: which signals to compute (skipping one skips its forward pass); ``()``
            computes only the real log-probs (a trainer's old or reference log-probs).
        signed: keep the sign of the log-prob deltas (the official code) instead of ``|.|``.
        chunk_size: positions per ``lm_head`` chunk; bounds the logits memory.
        temperature: divides the logits, so scores match the sampling distribution.
        gradient_weight: also return each token's gradient weight ``g_t`` (from the same pass
            as the log-probs; ``core.signals.token_log_stats``), for ``core.gradient_share``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        processor=None,
        visual_mode: str = "zero_embeddings",
        temporal_mode: str = "permute_groups",
        num_shuffles: int = 1,
        seed: int = 0,
        signals: Sequence[str] = SIGNALS,
        signed: bool = False,
        chunk_size: int | None = DEFAULT_CHUNK_SIZE,
        temperature: float = 1.0,
        gradient_weight: bool = False,
    ) -> None:
        if visual_mode not in VISUAL_MODES:
            raise ValueError(f"visual_mode must be one of {', '.join(VISUAL_MODES)}; got {visual_mode!r}")
        if temporal_mode not in TEMPORAL_MODES:
            raise ValueError(f"temporal_mode must be one of {', '.join(TEMPORAL_MODES)}; got {temporal_mode!r}")
        if isinstance(num_shuffles, bool) or not isinstance(num_shuffles, int) or num_shuffles < 1:
            raise ValueError(f"num_shuffles must be a positive int, got {num_shuffles!r}")
        unknown = [name for name in signals if name not in SIGNALS]
        if unknown:
            raise ValueError(f"signals must be a subset of {', '.join(SIGNALS)}; got {list(signals)}")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        self.model = model
        self.processor = processor
        self.adapter = get_adapter(model)
        self.visual_mode = visual_mode
        self.temporal_mode = temporal_mode
        self.num_shuffles = num_shuffles
        self.signals = tuple(signals)
        self.signed = signed
        self.chunk_size = chunk_size
        self.temperature = float(temperature)
        self.gradient_weight = bool(gradient_weight)
        self.generator = torch.Generator().manual_seed(seed)

    def _check_completions(self, completion_ids, completion_mask) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(completion_ids, torch.Tensor) or completion_ids.dim() != 2:
            raise ValueError("completion_ids must be a [G, T] integer tensor")
        if completion_ids.dtype.is_floating_point or completion_ids.dtype == torch.bool:
            raise ValueError(f"completion_ids must be an integer tensor, got dtype {completion_ids.dtype}")
        if completion_ids.shape[1] == 0:
            raise ValueError("completion_ids has no tokens (T = 0)")
        mask = as_bool_mask("completion_mask", completion_mask, completion_ids.shape)
        vocab = self.adapter.lm_head.out_features  # not weight.shape: ZeRO-3 leaves a placeholder there
        if int(completion_ids.min()) < 0 or int(completion_ids.max()) >= vocab:
            raise ValueError(
                f"completion_ids must lie in [0, {vocab}); replace padding ids such as -100 with the pad token id"
            )
        return completion_ids.to(self.adapter.device), mask.to(self.adapter.device)

    def _shuffle_orders(self, prompt) -> torch.Tensor | None:
        """``[K, n]`` derangements of the video's groups (or frames, for ``raw_frames``)."""
        groups = prompt.num_temporal_groups
        if groups < 2:
            return None  # an image, or a video of one temporal group: no order to change
        items = groups * self.adapter.temporal_patch_size if self.temporal_mode == "raw_frames" else groups
        return sample_derangements(items, self.num_shuffles, generator=self.generator)

    @torch.no_grad()
    def score(
        self,
        prompt_inputs: Mapping[str, torch.Tensor],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
    ) -> dict[str, torch.Tensor | None]:
        """Per-token scores for ``G`` completions of one prompt.

        Args:
            prompt_inputs: the processor's output for ONE prompt (one video or image + text).
            completion_ids: ``[G, T]`` generated token ids, right-padded with any valid id.
            completion_mask: ``[G, T]``, true on generated tokens.

        Returns:
            ``logps`` (the real input's log-probs), ``visual``, ``temporal``, ``entropy``: ``[G, T]``
            float32 tensors, 0 on padding; a signal that does not exist for this prompt (no
            temporal order in an image) is NaN everywhere. ``permutation``: the order used
            (``[n]``, or ``[K, n]`` when ``num_shuffles > 1``; groups, or frames for
            ``raw_frames``), or None. Signals not requested in ``signals`` are absent.
            ``gradient_weight`` (``[G, T]``, 0 on padding) when the attributor was built with it.
        """
        completion_ids, mask = self._check_completions(completion_ids, completion_mask)
        adapter = self.adapter
        prompt = adapter.prepare(prompt_inputs)
        features = adapter.encode(prompt)
        real = adapter.score_completions(
            adapter.real_variant(prompt, features), completion_ids, with_entropy="entropy" in self.signals,
            with_gradient_weight=self.gradient_weight, chunk_size=self.chunk_size, temperature=self.temperature,
        )
        counterfactuals = self._counterfactual_logps(prompt, features, completion_ids)
        return self._combine(real, counterfactuals, mask)

    # The two halves of ``score`` for a caller that runs the real input itself (the trainer's
    # loss forward): the counterfactual passes first, on the encoder output the caller made,
    # then the scores once the caller has the real input's statistics.

    @torch.no_grad()
    def counterfactual_logps(
        self,
        prompt_inputs: Mapping[str, torch.Tensor],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        features: dict,
    ) -> dict[str, torch.Tensor | None]:
        """The log-probs of the completions under each counterfactual input the signals need,
        built from ``features``, the prompt's encoder output (as ``QwenVLAdapter.encode`` gives
        it; detached by the caller). Give the result to ``score_from_real``.

        Returns:
            ``visual``: ``[G, T]`` (None for a text-only prompt); ``temporal``: ``[K, G, T]``
            (None when the prompt has no temporal order); ``permutation`` as in ``score``; each
            only when its signal is requested.
        """
        if self.adapter.lockstep:
            raise ValueError("counterfactual_logps needs the cached-prefix strategy: under FSDP / ZeRO-3 every "
                             "pass, the real one included, runs in lockstep through score()")
        completion_ids, _ = self._check_completions(completion_ids, completion_mask)
        return self._counterfactual_logps(self.adapter.prepare(prompt_inputs), features, completion_ids)

    def score_from_real(
        self,
        real: TokenLogStats,
        counterfactuals: Mapping[str, torch.Tensor | None],
        completion_mask: torch.Tensor,
    ) -> dict[str, torch.Tensor | None]:
        """``score``'s output from the real input's statistics, ``real`` (e.g. the loss's own
        forward, ``QwenVLAdapter.policy_log_stats``, at this attributor's temperature; detached
        here), and ``counterfactual_logps``' output. ``real.entropy`` is needed when the entropy
        signal is, ``real.gradient_weight`` when the attributor was built with it."""
        if "entropy" in self.signals and real.entropy is None:
            raise ValueError("the entropy signal is requested but real.entropy is None")
        if self.gradient_weight and real.gradient_weight is None:
            raise ValueError("the attributor was built with gradient_weight=True but real.gradient_weight is None")
        mask = as_bool_mask("completion_mask", completion_mask, real.logps.shape).to(real.logps.device)
        detached = TokenLogStats(*(None if value is None else value.detach() for value in real))
        return self._combine(detached, counterfactuals, mask)

    def _counterfactual_logps(self, prompt, features: dict, completion_ids: torch.Tensor) -> dict:
        adapter = self.adapter
        kwargs = dict(chunk_size=self.chunk_size, temperature=self.temperature, with_entropy=False)
        out: dict[str, torch.Tensor | None] = {}
        if "visual" in self.signals:
            out["visual"] = None
            if features:  # a text-only prompt has nothing to remove
                # No name holds the variant: its zeroed features (a video's size) go with the pass.
                out["visual"] = adapter.score_completions(
                    adapter.visual_counterfactual(prompt, features, self.visual_mode), completion_ids, **kwargs
                ).logps
        if "temporal" in self.signals:
            orders = self._shuffle_orders(prompt)
            out["temporal"] = out["permutation"] = None
            if orders is None:
                if adapter.lockstep:  # FSDP: every process runs the same passes, needed or not
                    for _ in range(self.num_shuffles):
                        variant = adapter.placeholder_variant(prompt, features, self.temporal_mode)
                        adapter.score_completions(variant, completion_ids, **kwargs)
            else:
                out["temporal"] = torch.stack([
                    adapter.score_completions(
                        adapter.temporal_counterfactual(prompt, features, order, self.temporal_mode),
                        completion_ids, **kwargs,
                    ).logps
                    for order in orders
                ])
                out["permutation"] = orders[0] if len(orders) == 1 else orders
        return out

    def _combine(self, real: TokenLogStats, counterfactuals: Mapping, mask: torch.Tensor) -> dict:
        """The scores from the real input's statistics and the counterfactual log-probs."""
        logps = real.logps
        out: dict[str, torch.Tensor | None] = {"logps": logps.masked_fill(~mask, 0.0)}
        if self.gradient_weight:
            out["gradient_weight"] = real.gradient_weight.masked_fill(~mask, 0.0)
        unavailable = torch.full_like(logps, float("nan"))
        if "visual" in self.signals:
            cf_logps = counterfactuals["visual"]
            out["visual"] = (unavailable.clone() if cf_logps is None
                             else logprob_delta(logps, cf_logps, signed=self.signed).masked_fill(~mask, 0.0))
        if "temporal" in self.signals:
            shuffled = counterfactuals["temporal"]
            out["permutation"] = counterfactuals["permutation"]
            if shuffled is None:
                out["temporal"] = unavailable.clone()
            else:
                deltas = torch.stack([logprob_delta(logps, cf_logps, signed=self.signed) for cf_logps in shuffled])
                out["temporal"] = deltas.mean(0).masked_fill(~mask, 0.0)
        if "entropy" in self.signals:
            out["entropy"] = real.entropy.masked_fill(~mask, 0.0)
        return out

    def select(
        self,
        scores: Mapping[str, torch.Tensor | None],
        completion_mask: torch.Tensor,
        ratio: float | Mapping[str, float] = 0.2,
        signals: Sequence[str] | None = None,
        scope: str = "group",
        method: str = "topk",
    ) -> torch.Tensor:
        """The key-token mask ``[G, T]`` from ``score``'s output, with the core's
        ``select_key_tokens`` (one group: the ``G`` completions of this prompt)."""
        names = list(signals) if signals is not None else [name for name in SIGNALS if name in scores]
        missing = [name for name in names if scores.get(name) is None]
        if missing:
            raise ValueError(f"scores has no {missing}; score() was configured with signals={list(self.signals)}")
        chosen = {name: scores[name] for name in names}
        mask = as_bool_mask("completion_mask", completion_mask).to(next(iter(chosen.values())).device)
        return select_key_tokens(
            chosen, mask, ratio=ratio, scope=scope, group_size=mask.shape[0], method=method
        )
