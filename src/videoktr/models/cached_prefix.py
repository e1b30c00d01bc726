"""The default execution strategy: the prompt runs once per variant, its KV cache serves the
``G`` completions, and ``lm_head`` runs over chunks of positions.

A scoring pass (``score_completions``):

1. the prompt (one video or image + text, batch 1) runs once through the decoder with its
   visual features *already computed* (transformers' ``mm_encoder_outputs`` argument), in
   chunks of tokens when ``prefill_chunk_tokens`` is set, and leaves a KV cache;
2. the ``G`` completions run as one ``[G, T]`` batch on top of that cache, which each layer
   broadcasts to the batch as it attends (``share_cache``): the prompt is neither recomputed
   nor its cache copied per completion;
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
from transformers.cache_utils import DynamicLayer

from .prompt import PromptInputs, PromptVariant

if TYPE_CHECKING:
    from .base import QwenVLAdapter


class _BatchSharedLayer(DynamicLayer):
    """One layer of a prompt's KV cache (batch 1) read by a batch of completions in one forward:
    ``update`` returns the prompt's keys and values broadcast to the batch with the batch's own
    appended, and keeps nothing. So the prompt's cache is never copied ``G`` times into the
    cache; ``[G, P + T]`` keys exist for one layer at a time, while its attention runs (without
    gradient; with it, autograd keeps each layer's for the backward, as a repeated cache would)."""

    def __init__(self, layer: DynamicLayer) -> None:
        super().__init__()
        self.keys, self.values = layer.keys, layer.values
        self.device = layer.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        batch = key_states.shape[0]
        keys = torch.cat([self.keys.expand(batch, -1, -1, -1), key_states], dim=-2)
        values = torch.cat([self.values.expand(batch, -1, -1, -1), value_states], dim=-2)
        return keys, values


def share_cache(cache, num_completions: int):
    """The prompt's ``cache`` made to serve ``num_completions`` sequences in one forward: its
    layers shared across the batch (``_BatchSharedLayer``) when they are plain full-attention
    layers, else (a sliding window, say) repeated ``num_completions`` times."""
    if all(type(layer) is DynamicLayer for layer in cache.layers):
        cache.layers = [_BatchSharedLayer(layer) for layer in cache.layers]
    else:
        cache.batch_repeat_interleave(num_completions)
    return cache


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
        """Run the prompt once, in chunks of ``prefill_chunk_tokens`` when set (each chunk
        given its own share of the visual features); its last hidden state ``[1, 1, D]`` and its
        KV cache, made to serve the ``G`` completions (``share_cache``)."""
        adapter = self.adapter
        input_ids = variant.input_ids
        length = input_ids.shape[1]
        step = adapter.prefill_chunk_tokens or length
        placeholder_ids = {"image": adapter.image_token_id, "video": adapter.video_token_id}
        features_used = dict.fromkeys(placeholder_ids, 0)
        cache = None
        for start in range(0, length, step):
            chunk_ids = input_ids[:, start : start + step]
            if step >= length:
                features = dict(variant.encoder_outputs)
            else:
                features = {}
                for key, output in variant.encoder_outputs.items():
                    count = int((chunk_ids == placeholder_ids[key]).sum())
                    if count:
                        first = features_used[key]
                        features[key] = adapter.feature_rows(output, first, first + count)
                        features_used[key] = first + count
            out = adapter.inner(
                input_ids=chunk_ids,
                position_ids=positions[:, :, start : start + chunk_ids.shape[1]],
                mm_encoder_outputs=features or None,
                cache=cache,
                use_cache=True,
            )
            cache, last_hidden = out.cache, out.last_hidden_state[:, -1:]
            del out
        return last_hidden, share_cache(cache, num_completions)

    def score_completions(self, variant, completion_ids, chunk_size, with_entropy, temperature,
                          with_gradient_weight=False):
        adapter = self.adapter
        num_completions, length = completion_ids.shape
        positions = adapter.rope_positions(variant, length)
        prompt_length = variant.input_ids.shape[1]
        last_prompt, cache = self._prefix(variant, positions, num_completions)
        completion_out = adapter.inner(
            input_ids=completion_ids,
            position_ids=positions[:, :, prompt_length:].expand(3, num_completions, length),
            cache=cache,
            use_cache=True,
        )
        # Position p's hidden state predicts token p + 1: the prompt's last state predicts the
        # first completion token, completion state t predicts token t + 1.
        last_prompt = last_prompt.expand(num_completions, 1, -1)
        predictors = torch.cat([last_prompt, completion_out.last_hidden_state[:, :-1]], dim=1)
        del completion_out, cache
        return adapter.logps_from_hidden(predictors, completion_ids, chunk_size, with_entropy, temperature,
                                         with_gradient_weight)

    @staticmethod
    def _repeat_features(output, times: int):
        """An encoder output whose per-item tuples hold ``times`` copies (one per sequence)."""
        fields = {"pooler_output": tuple(output.pooler_output) * times}
        deepstack = getattr(output, "deepstack_features", None)
        if deepstack is not None:
            fields["deepstack_features"] = [tuple(layer) * times for layer in deepstack]
        return type(output)(**fields)

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
            out = forward(
                input_ids=completion_ids,
                position_ids=positions[:, :, prompt_length:].expand(3, num_completions, length),
                cache=cache,
                use_cache=True,
            )
            return torch.cat([first_logits, out.logits[:, :-1]], dim=1)
        full_ids = torch.cat([variant.input_ids.expand(num_completions, -1), completion_ids], dim=1)
        repeated = {key: self._repeat_features(output, num_completions) for key, output in features.items()}
        out = forward(
            input_ids=full_ids,
            position_ids=positions.expand(3, num_completions, -1),
            mm_encoder_outputs=repeated or None,
            use_cache=False,
            logits_to_keep=length + 1,
        )
        return out.logits[:, :-1]
