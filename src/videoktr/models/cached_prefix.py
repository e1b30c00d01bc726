"""The default execution strategy: the prompt runs once per variant, its KV cache serves the
``G`` completions, and ``lm_head`` runs over chunks of positions.

A scoring pass (``score_completions``):

1. the prompt (one video or image + text, batch 1) runs once through the decoder with its
   visual features *already computed* (transformers' ``mm_encoder_outputs`` argument), in
   chunks of tokens when ``prefill_chunk_tokens`` is set, and leaves a KV cache;
2. the ``G`` completions run as one ``[G, T]`` batch on top of that cache, which each layer
   broadcasts to the batch as it attends (``share_cache``), or, with ``prefill_chunk_tokens``,
   packed into one sequence behind it (``packed_completion_mask``): the prompt is neither
   recomputed nor its cache copied per completion;
3. log-probs (and, for the real input, the entropy) come from the decoder's hidden states chunk
   by chunk through ``lm_head`` (``QwenVLAdapter.logps_from_hidden``): no ``[G, T, vocab]``
   logits tensor is ever built.

The training pass (``policy_logits``) calls the (possibly DDP/DeepSpeed-wrapped) model's
``forward`` exactly once per prompt, so a distributed wrapper sees one forward per backward;
the vision encoder and the shared prompt prefix run on the inner modules with gradient, and
their parameters' gradients reach the same backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch.utils.checkpoint import checkpoint
from transformers.cache_utils import DynamicCache, DynamicLayer

from .prompt import PromptInputs, PromptVariant

if TYPE_CHECKING:
    from .base import QwenVLAdapter


class _ReadOnlyLayer(DynamicLayer):
    """One layer's KV cache of what came before (batch 1, in pieces: one per prefill chunk), read
    by the next forward and never written: ``update`` returns the pieces broadcast to the
    forward's batch with the forward's own keys and values appended, and keeps only those
    (``new_states``) for a caller that extends the cache itself.

    So the ``G`` completions read the prompt's cache without ``G`` copies of it in the cache:
    ``[G, P + T]`` keys exist for one layer at a time, while its attention runs (without
    gradient; with it, autograd keeps each layer's for the backward, as a repeated cache would).
    And a prefill chunk reads the chunks before it without their pieces ever being joined."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        super().__init__()
        self.key_pieces, self.value_pieces = keys, values
        self.keys, self.values = keys[0], values[0]  # for dtype and device lookups
        self.device = keys[0].device
        self.is_initialized = True
        self.new_states: tuple[torch.Tensor, torch.Tensor] | None = None

    def get_seq_length(self) -> int:
        return sum(piece.shape[-2] for piece in self.key_pieces)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.new_states = (key_states, value_states)
        batch = key_states.shape[0]
        keys = torch.cat([*(piece.expand(batch, -1, -1, -1) for piece in self.key_pieces), key_states], dim=-2)
        values = torch.cat([*(piece.expand(batch, -1, -1, -1) for piece in self.value_pieces), value_states], dim=-2)
        return keys, values


def _read_only_cache(key_pieces: list[list[torch.Tensor]], value_pieces: list[list[torch.Tensor]]) -> DynamicCache:
    cache = DynamicCache()
    cache.layers = [_ReadOnlyLayer(keys, values) for keys, values in zip(key_pieces, value_pieces)]
    return cache


def _full_attention_layers(cache) -> bool:
    """Whether every layer of ``cache`` is a plain full-attention one (no sliding window), which
    a read-only layer can stand for."""
    return all(type(layer) is DynamicLayer for layer in cache.layers)


def share_cache(cache, num_completions: int):
    """The prompt's ``cache`` made to serve ``num_completions`` sequences in one forward: its
    layers shared across the batch (``_ReadOnlyLayer``) when they are plain full-attention
    layers, else (a sliding window, say) repeated ``num_completions`` times."""
    if _full_attention_layers(cache):
        return _read_only_cache([[layer.keys] for layer in cache.layers], [[layer.values] for layer in cache.layers])
    cache.batch_repeat_interleave(num_completions)
    return cache


def packed_completion_mask(num_completions: int, length: int, prompt_length: int,
                           device: torch.device | None = None) -> torch.Tensor:
    """``[1, 1, G T, P + G T]``, true where a query may attend: ``G`` completions of ``T``
    tokens packed one after another behind a prompt of ``P`` tokens, each seeing the whole
    prompt and its own tokens up to itself, never another completion."""
    packed = torch.arange(num_completions * length, device=device)
    completion, step = packed // length, packed % length
    own = (completion[:, None] == completion[None, :]) & (step[None, :] <= step[:, None])
    prompt = torch.ones(packed.shape[0], prompt_length, dtype=torch.bool, device=device)
    return torch.cat([prompt, own], dim=1)[None, None]


class CachedPrefixStrategy:
    """Encoder and decoder called as submodules; see the module docstring."""

    lockstep = False

    def __init__(self, adapter: QwenVLAdapter) -> None:
        self.adapter = adapter

    def encode(self, prompt: PromptInputs) -> dict:
        adapter = self.adapter
        outputs = {}
        if prompt.pixel_values is not None:
            outputs["image"] = adapter.encode_image(prompt.pixel_values, prompt.image_grid_thw)
        if prompt.pixel_values_videos is not None:
            outputs["video"] = adapter.encode_video(prompt.pixel_values_videos, prompt.video_grid_thw)
        return outputs

    def reencoded_variant(self, prompt: PromptInputs, features: dict, pixels: dict) -> PromptVariant:
        adapter = self.adapter
        encoded = {}
        if "pixel_values" in pixels:
            encoded["image"] = adapter.encode_image(pixels["pixel_values"], prompt.image_grid_thw)
        if "pixel_values_videos" in pixels:
            encoded["video"] = adapter.encode_video(pixels["pixel_values_videos"], prompt.video_grid_thw)
        return replace(adapter.real_variant(prompt, features), encoder_outputs={**features, **encoded})

    def _prefix(self, variant: PromptVariant, positions: torch.Tensor, num_completions: int):
        """Run the prompt once; its last hidden state ``[1, 1, D]`` and its KV cache, made to
        serve the ``G`` completions (``share_cache``). In chunks when ``prefill_chunk_tokens``
        is set and shorter than the prompt (``_chunked_prefix``)."""
        adapter = self.adapter
        length = variant.input_ids.shape[1]
        step = adapter.prefill_chunk_tokens
        if step is not None and step < length:
            return self._chunked_prefix(variant, positions, step)
        out = adapter.inner(
            input_ids=variant.input_ids,
            position_ids=positions[:, :, :length],
            mm_encoder_outputs=dict(variant.encoder_outputs) or None,
            use_cache=True,
        )
        return out.last_hidden_state[:, -1:], share_cache(out.cache, num_completions)

    def _chunked_prefix(self, variant: PromptVariant, positions: torch.Tensor, step: int):
        """The prompt ``step`` tokens at a time, each chunk given its share of the visual
        features (``QwenVLAdapter.feature_rows``: transformers' chunked prefill in ``generate``
        slices them the same way) and attending to the chunks before it, whose KV pieces are
        never joined (``_ReadOnlyLayer``). Each chunk is a function from the pieces before it to
        its own: under gradient it is checkpointed, so the backward pass runs it again instead
        of keeping its activations, and memory beyond the KV cache stays one chunk's whatever
        the prompt's length. The cache it returns serves any number of completions."""
        adapter = self.adapter
        input_ids = variant.input_ids
        placeholder_ids = {"image": adapter.image_token_id, "video": adapter.video_token_id}
        rows_used = dict.fromkeys(placeholder_ids, 0)  # feature rows given to earlier chunks
        key_pieces: list[list[torch.Tensor]] = []
        value_pieces: list[list[torch.Tensor]] = []
        for start in range(0, input_ids.shape[1], step):
            chunk_ids = input_ids[:, start : start + step]
            features = {}
            for key, output in variant.encoder_outputs.items():
                count = int((chunk_ids == placeholder_ids[key]).sum())
                if count:
                    features[key] = adapter.feature_rows(output, rows_used[key], rows_used[key] + count)
                    rows_used[key] += count

            # The pieces are copied into the defaults because the lists grow with later chunks,
            # and the backward pass must run this chunk again on the pieces it first saw.
            def run_chunk(chunk_ids=chunk_ids, features=features, start=start,
                          keys=[list(layer) for layer in key_pieces], values=[list(layer) for layer in value_pieces]):
                cache = _read_only_cache(keys, values) if keys else None
                out = adapter.inner(
                    input_ids=chunk_ids,
                    position_ids=positions[:, :, start : start + chunk_ids.shape[1]],
                    mm_encoder_outputs=features or None,
                    cache=cache,
                    use_cache=True,
                )
                if cache is None and not _full_attention_layers(out.cache):
                    raise ValueError("prefill_chunk_tokens needs a decoder whose layers all attend to the whole "
                                     "prompt (no sliding window); unset it for this model")
                states = [layer.new_states if cache is not None else (layer.keys, layer.values)
                          for layer in out.cache.layers]
                return out.last_hidden_state[:, -1:], states

            if torch.is_grad_enabled():
                last_hidden, states = checkpoint(run_chunk, use_reentrant=False)
            else:
                last_hidden, states = run_chunk()
            if not key_pieces:
                key_pieces, value_pieces = [[] for _ in states], [[] for _ in states]
            for layer, (keys, values) in enumerate(states):
                key_pieces[layer].append(keys)
                value_pieces[layer].append(values)
        return last_hidden, _read_only_cache(key_pieces, value_pieces)

    def score_completions(self, variant, completion_ids, chunk_size, with_entropy, temperature,
                          with_gradient_weight=False):
        adapter = self.adapter
        num_completions, length = completion_ids.shape
        positions = adapter.rope_positions(variant, length)
        prompt_length = variant.input_ids.shape[1]
        last_prompt, cache = self._prefix(variant, positions, num_completions)
        hidden = self._completions(adapter.inner, cache, completion_ids, positions[:, :, prompt_length:],
                                   "last_hidden_state")
        # Position p's hidden state predicts token p + 1: the prompt's last state predicts the
        # first completion token, completion state t predicts token t + 1.
        last_prompt = last_prompt.expand(num_completions, 1, -1)
        predictors = torch.cat([last_prompt, hidden[:, :-1]], dim=1)
        del hidden, cache
        return adapter.logps_from_hidden(predictors, completion_ids, chunk_size, with_entropy, temperature,
                                         with_gradient_weight)

    def _packs_completions(self, cache=None) -> bool:
        """Whether the completions run packed into one sequence (``_completions``): with a
        chunked prefill (``prefill_chunk_tokens``, the long-prompt setting), an attention that
        takes an arbitrary mask (``sdpa``, ``eager``; not ``flash_attention_2``), and a prompt
        cache of batch 1 (``share_cache`` repeats a cache with sliding-window layers instead)."""
        implementation = self.adapter.inner.language_model.config._attn_implementation
        shared = cache is None or all(isinstance(layer, _ReadOnlyLayer) for layer in cache.layers)
        return self.adapter.prefill_chunk_tokens is not None and implementation in ("sdpa", "eager") and shared

    def _completions(self, forward: Callable, cache, completion_ids: torch.Tensor, positions: torch.Tensor,
                     output: str) -> torch.Tensor:
        """The ``G`` completions on the prompt's ``cache``; ``output`` (``last_hidden_state`` or
        ``logits``) as ``[G, T, ...]``. ``positions``: ``[3, 1, T]``, the same for each.

        Either as a ``[G, T]`` batch, each row reading the prompt's cache broadcast to the batch
        (``_ReadOnlyLayer``); or packed (``_packs_completions``) into one ``[1, G * T]``
        sequence whose mask lets each completion see the whole prompt and its own earlier
        tokens only (``packed_completion_mask``). The attention then reads the prompt's keys
        once instead of once per completion: under gradient, autograd keeps each layer's keys
        and values for the backward, ``G x (P + T)`` rows batched against ``P + G x T`` packed
        (and ``sdpa`` with a mask expands them to every query head first). On a long video the
        prompt's share is most of it. The price: each query's attention spans the other
        completions too (masked), ``P + G x T`` keys instead of ``P + T``."""
        num_completions, length = completion_ids.shape
        if not self._packs_completions(cache):
            out = forward(input_ids=completion_ids, position_ids=positions.expand(3, num_completions, length),
                          cache=cache, use_cache=True)
            return getattr(out, output)
        # Additive, in the model's dtype: eager adds it to the scores, and sdpa, given a boolean
        # mask, would make (and keep for the backward) a float copy of it in every layer.
        dtype = self.adapter.inner.language_model.dtype
        allowed = packed_completion_mask(num_completions, length, cache.get_seq_length(), completion_ids.device)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
            ~allowed, torch.finfo(dtype).min)
        del allowed
        out = forward(input_ids=completion_ids.reshape(1, -1), position_ids=positions.repeat(1, 1, num_completions),
                      cache=cache, attention_mask=mask, use_cache=True)
        return getattr(out, output).reshape(num_completions, length, -1)

    def policy_logits(self, forward: Callable, prompt: PromptInputs, completion_ids: torch.Tensor,
                      share_prefix: bool, features: dict | None = None) -> torch.Tensor:
        """With ``share_prefix`` the prompt runs once on the inner modules and the completions
        on its repeated cache through ``forward``; without (gradient checkpointing drops KV
        caches) ``[G, P + T]`` full sequences run through ``forward``, the video still encoded
        once and its features repeated for the ``G`` rows. ``features``: the prompt's encoder
        output, already computed by the caller (with gradient where the encoder trains)."""
        adapter = self.adapter
        features = self.encode(prompt) if features is None else features
        variant = adapter.real_variant(prompt, features)
        num_completions, length = completion_ids.shape
        positions = adapter.rope_positions(variant, length)
        prompt_length = variant.input_ids.shape[1]
        if share_prefix:
            last_prompt, cache = self._prefix(variant, positions, num_completions)
            first_logits = adapter.lm_head(last_prompt).expand(num_completions, -1, -1)
            logits = self._completions(forward, cache, completion_ids, positions[:, :, prompt_length:], "logits")
            return torch.cat([first_logits, logits[:, :-1]], dim=1)
        full_ids = torch.cat([variant.input_ids.expand(num_completions, -1), completion_ids], dim=1)
        # Each per-item tuple holds num_completions copies, one per sequence of the batch.
        repeated = {key: adapter.map_feature_tuples(output, lambda items: items * num_completions)
                    for key, output in features.items()}
        out = forward(
            input_ids=full_ids,
            position_ids=positions.expand(3, num_completions, -1),
            mm_encoder_outputs=repeated or None,
            use_cache=False,
            logits_to_keep=length + 1,
        )
        return out.logits[:, :-1]
