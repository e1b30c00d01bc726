"""The execution strategy for FSDP2 and DeepSpeed ZeRO-3: every pass through the model's root
forward, every process running the same passes.

Why. FSDP gathers the parameters that no nested FSDP unit owns (embeddings, ``lm_head``,
norms, the vision encoder's patch embedding and merger) only inside the root forward,
``model(...)``; ZeRO-3 gathers each module's weights with a collective whenever it runs. So the
cached-prefix strategy's submodule calls (and its chunked ``lm_head``, one call per chunk of a
process's own completions) would compute with unsharded placeholders or pair collectives up
wrongly. The adapter switches to this strategy by itself when it finds either
(``needs_root_forward``).

The savings that survive: the prompt runs once per variant (a root forward with ``use_cache``,
its cache repeated for the ``G`` completions, which run in a second root forward), and the
vision encoder still runs once per prompt (the first root forward returns the encoder's output,
which later passes take back as ``mm_encoder_outputs``, zeroed or permuted). What is lost is
the chunked ``lm_head``: the root forward returns the ``[G, T, vocab]`` logits, and
``chunk_size`` then bounds the log-softmax only. Passes a prompt does not need (the temporal
counterfactual of an image) run as placeholders (``lockstep``), so that processes stay paired.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from ..core.signals import token_log_stats
from .prompt import PromptInputs, PromptVariant, pixel_kwargs

if TYPE_CHECKING:
    from .base import QwenVLAdapter


def is_fsdp_wrapped(model: torch.nn.Module) -> bool:
    """True when ``model`` or any of its submodules is sharded by FSDP (FSDP1's
    ``FullyShardedDataParallel`` or FSDP2's ``fully_shard``)."""
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:  # a torch without distributed support
        return False
    return any(isinstance(module, (FSDPModule, FullyShardedDataParallel)) for module in model.modules())


def is_zero3_partitioned(model: torch.nn.Module) -> bool:
    """True when DeepSpeed ZeRO-3 has partitioned ``model``'s parameters (they carry ``ds_id``).

    ZeRO-3 all-gathers a module's weights, a collective, each time the module runs, so every
    process must call the same modules the same number of times: the cached-prefix strategy's
    chunked ``lm_head`` and skipped passes for images would pair collectives up wrongly."""
    return any(hasattr(parameter, "ds_id") for parameter in model.parameters())


def needs_root_forward(model: torch.nn.Module) -> bool:
    """Whether every pass must run through ``model(...)`` in lockstep: FSDP, or ZeRO-3."""
    return is_fsdp_wrapped(model) or is_zero3_partitioned(model)


@dataclass
class _StashedPrefix:
    """The real prompt's root-forward prefix pass, kept by ``encode`` for the real scoring pass."""

    input_ids: torch.Tensor
    features: dict
    first_logits: torch.Tensor  # [1, 1, V]: the prompt's last position
    cache: object


class RootForwardStrategy:
    """Every pass through the root forward; see the module docstring."""

    lockstep = True

    def __init__(self, adapter: QwenVLAdapter) -> None:
        self.adapter = adapter
        self._stash: _StashedPrefix | None = None

    def encode(self, prompt: PromptInputs) -> dict:
        """The real prompt's prefix pass (a root forward that encodes the pixels on the way);
        its cache is kept for the next ``score_completions`` call on the real variant, so the
        prompt still runs once."""
        adapter = self.adapter
        self._stash = None
        pixels = pixel_kwargs(prompt)
        if not pixels:
            return {}
        positions = adapter.rope_positions(adapter.real_variant(prompt, {}), 0)
        adapter.encoder_calls += 1
        out = adapter.model(
            input_ids=prompt.input_ids, position_ids=positions, use_cache=True, logits_to_keep=1, **pixels
        )
        features = {}
        for key, output in (("image", out.image_outputs), ("video", out.video_outputs)):
            if output is not None:
                features[key] = adapter.decoder_features(output)
        self._stash = _StashedPrefix(prompt.input_ids, features, out.logits[:, -1:], out.cache)
        return features

    def reencoded_variant(self, prompt: PromptInputs, features: dict, pixels: dict) -> PromptVariant:
        inputs = pixel_kwargs(prompt)
        inputs.update(pixels)
        return replace(self.adapter.real_variant(prompt, features), encoder_outputs={}, pixel_inputs=inputs)

    def _take_stash(self, variant: PromptVariant) -> _StashedPrefix | None:
        """The stashed real prefix if ``variant`` is the real prompt it was computed for (once)."""
        stash = self._stash
        if (
            stash is None
            or variant.pixel_inputs
            or variant.input_ids is not stash.input_ids
            or variant.encoder_outputs.keys() != stash.features.keys()
            or any(variant.encoder_outputs[key] is not output for key, output in stash.features.items())
        ):
            return None
        self._stash = None
        return stash

    def _prefix(self, forward: Callable, variant: PromptVariant, positions: torch.Tensor, num_completions: int):
        """Root forward of the prompt: the logits of its last position ``[1, 1, V]`` and its KV
        cache repeated for the ``G`` completions."""
        prompt_length = variant.input_ids.shape[1]
        stash = self._take_stash(variant)
        if stash is not None:
            first_logits, cache = stash.first_logits, stash.cache
        else:
            kwargs = {}
            if variant.pixel_inputs:
                self.adapter.encoder_calls += 1
                kwargs = dict(variant.pixel_inputs)
            elif variant.encoder_outputs:
                kwargs = {"mm_encoder_outputs": dict(variant.encoder_outputs)}
            out = forward(
                input_ids=variant.input_ids,
                position_ids=positions[:, :, :prompt_length],
                use_cache=True,
                logits_to_keep=1,
                **kwargs,
            )
            first_logits, cache = out.logits[:, -1:], out.cache
        cache.batch_repeat_interleave(num_completions)
        return first_logits, cache

    def _completion_logits(self, forward: Callable, variant: PromptVariant, completion_ids: torch.Tensor):
        """``[G, T, V]`` logits predicting the completion tokens, from two root forwards: the
        prompt (cached) and the completions on its repeated cache."""
        num_completions, length = completion_ids.shape
        positions = self.adapter.rope_positions(variant, length)
        prompt_length = variant.input_ids.shape[1]
        first_logits, cache = self._prefix(forward, variant, positions, num_completions)
        out = forward(
            input_ids=completion_ids,
            position_ids=positions[:, :, prompt_length:].expand(3, num_completions, length),
            cache=cache,
            use_cache=True,
        )
        return torch.cat([first_logits.expand(num_completions, 1, -1), out.logits[:, :-1]], dim=1)

    def score_completions(self, variant, completion_ids, chunk_size, with_entropy, temperature,
                          with_gradient_weight=False):
        logits = self._completion_logits(self.adapter.model, variant, completion_ids)
        if temperature != 1.0:
            logits = logits / temperature
        return token_log_stats(logits, completion_ids, chunk_size=chunk_size, with_entropy=with_entropy,
                               with_gradient_weight=with_gradient_weight)

    def policy_logits(self, forward: Callable, prompt: PromptInputs, completion_ids: torch.Tensor,
                      share_prefix: bool, features: dict | None = None) -> torch.Tensor:
        """With ``share_prefix`` two root forwards (the prompt, which encodes the video, then the
        completions on its repeated cache; FSDP2 takes several forwards per backward), else one
        over ``[G, P + T]`` in which the encoder's output is repeated for the ``G`` rows
        (``_tiled_encoder``). The encoder runs inside the root forward: ``features`` computed
        beforehand cannot be given."""
        if features is not None:
            raise ValueError("under FSDP / ZeRO-3 the encoder runs inside the root forward; features cannot be given")
        adapter = self.adapter
        variant = adapter.real_variant(prompt, {})
        if share_prefix:
            variant.pixel_inputs = pixel_kwargs(prompt)
            return self._completion_logits(forward, variant, completion_ids)
        num_completions, length = completion_ids.shape
        positions = adapter.rope_positions(variant, length)
        full_ids = torch.cat([variant.input_ids.expand(num_completions, -1), completion_ids], dim=1)
        pixels = pixel_kwargs(prompt, repeat=num_completions)
        adapter.encoder_calls += bool(pixels)
        with self._tiled_encoder(num_completions):
            out = forward(
                input_ids=full_ids,
                position_ids=positions.expand(3, num_completions, -1),
                use_cache=False,
                logits_to_keep=length + 1,
                **pixels,
            )
        return out.logits[:, :-1]

    @contextlib.contextmanager
    def _tiled_encoder(self, times: int) -> Iterator[None]:
        """Inside, the vision encoder encodes each image/video once and returns its output
        ``times`` times, as if it had been given ``times`` copies.

        The root forward is called with each grid repeated ``times`` times (one copy per
        sequence of the batch) but the pixels once: a pre-hook hands the encoder the grids of
        one copy, a hook tiles its output (merged embeddings and Qwen3-VL's deepstack features)
        to match the repeated grids. The gradient of every copy flows back into the one encoding.
        """
        visual = self.adapter.inner.visual

        def one_copy_of_the_grids(module, args, kwargs):
            if "grid_thw" in kwargs:
                grid = kwargs["grid_thw"]
                kwargs = {**kwargs, "grid_thw": grid[: grid.shape[0] // times]}
            else:
                grid = args[1]
                args = (args[0], grid[: grid.shape[0] // times], *args[2:])
            return args, kwargs

        def tiled(module, args, output):
            output.pooler_output = output.pooler_output.repeat(times, 1)
            deepstack = getattr(output, "deepstack_features", None)
            if deepstack is not None:
                output.deepstack_features = [feature.repeat(times, 1) for feature in deepstack]
            return output

        handles = [
            visual.register_forward_pre_hook(one_copy_of_the_grids, with_kwargs=True),
            visual.register_forward_hook(tiled),
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
