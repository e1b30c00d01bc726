"""What every Qwen-VL adapter shares: prepare a prompt, build its counterfactual variants, score.

The adapter turns one processor output into a ``PromptInputs``, builds the variants the signals
need (``real_variant``, ``visual_counterfactual``, ``temporal_counterfactual``) and scores the
``G`` completions of a prompt under a variant (``score_completions``, no gradient) or computes
their log-probs for the loss (``policy_logps``, with gradient). How the passes run is the
execution strategy's business (``models/prompt.py``): ``CachedPrefixStrategy`` by default,
``RootForwardStrategy`` under FSDP2 or ZeRO-3, chosen once when the adapter is built.

Positions come from the family's own ``get_rope_index`` on the whole prompt + completion
sequence, exactly as a plain forward computes them, so a pass that runs the completions on a
cached prefix reproduces it. Because every Qwen-VL vision encoder attends within one temporal
patch group at a time and its positions depend only on the grid, permuting the encoder's output
rows group by group equals encoding group-permuted frames: the temporal counterfactual needs no
second encoder run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import torch
from torch.utils.checkpoint import checkpoint

from ..core.signals import TokenLogStats, token_log_stats
from .cached_prefix import CachedPrefixStrategy
from .lora import base_model
from .prompt import (
    PIXEL_GRIDS,
    PROMPT_KEYS,
    TEMPORAL_MODES,
    VISUAL_MODES,
    ExecutionStrategy,
    PromptInputs,
    PromptVariant,
)
from .root_forward import RootForwardStrategy, needs_root_forward

ENCODER_CHUNK_ATTRIBUTE = "videoktr_encoder_chunk_groups"
PREFILL_CHUNK_ATTRIBUTE = "videoktr_prefill_chunk_tokens"


def _set_model_option(model: torch.nn.Module, attribute: str, value: int | None, what: str) -> None:
    # Kept on the (base) model, since adapters are built per call (``get_adapter``).
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{what} must be a positive int or None, got {value!r}")
    setattr(base_model(model), attribute, value)


def set_encoder_chunking(model: torch.nn.Module, groups: int | None) -> None:
    """Every adapter built for ``model`` from now on runs the vision encoder over a video
    ``groups`` temporal groups at a time (None: the whole video in one call). Exact (see
    ``QwenVLAdapter._encode_video_in_chunks``); it bounds the encoder's activation memory on long
    videos. The root-forward strategy (FSDP, ZeRO-3) encodes inside the wrapped forward and does
    not chunk."""
    _set_model_option(model, ENCODER_CHUNK_ATTRIBUTE, groups, "encoder chunk groups")


def set_prefill_chunking(model: torch.nn.Module, tokens: int | None) -> None:
    """Every adapter built for ``model`` from now on runs a prompt through the decoder ``tokens``
    tokens at a time, each chunk attending to the KV cache of those before it (None: the whole
    prompt in one call). Equal to one call up to floating-point rounding (the same attention,
    computed in blocks); it bounds the decoder's activations and attention scores by the chunk
    instead of the prompt, which on a long video is most of the memory beyond the KV cache. Under
    gradient each chunk is checkpointed, and the completions run packed into one sequence over
    the prompt's cache (``CachedPrefixStrategy._chunked_prefix``, ``_completions``). The
    root-forward strategy (FSDP, ZeRO-3) runs the prompt in one call."""
    _set_model_option(model, PREFILL_CHUNK_ATTRIBUTE, tokens, "prefill chunk tokens")


class QwenVLAdapter:
    """Base adapter; a subclass per family declares what differs (see ``models/qwen*.py``).

    Args:
        model: a ``...ForConditionalGeneration`` of the family (possibly sharded).
        root_forward: run every pass through ``model(...)`` in lockstep
            (``RootForwardStrategy``); None detects FSDP / ZeRO-3 (``needs_root_forward``).
    """

    #: ``config.model_type`` values this adapter serves.
    model_types: tuple[str, ...] = ()
    #: keyword arguments of the family's ``get_rope_index`` beyond ids, types and grids.
    rope_extra_keys: tuple[str, ...] = ()

    def __init__(self, model: torch.nn.Module, root_forward: bool | None = None) -> None:
        self.model = model
        self.inner = model.model  # the ...VLModel: visual encoder + language model
        self.lm_head = model.get_output_embeddings()
        config = model.config
        self.image_token_id = config.image_token_id
        self.video_token_id = config.video_token_id
        vision = config.vision_config
        self.patch_size = vision.patch_size
        self.temporal_patch_size = vision.temporal_patch_size
        self.spatial_merge_size = vision.spatial_merge_size
        #: how many times the vision encoder ran; tests check "once per prompt".
        self.encoder_calls = 0
        #: temporal groups per vision-encoder call on a video (``set_encoder_chunking``).
        self.encoder_chunk_groups: int | None = getattr(model, ENCODER_CHUNK_ATTRIBUTE, None)
        #: prompt tokens per decoder call when a prompt is prefilled (``set_prefill_chunking``).
        self.prefill_chunk_tokens: int | None = getattr(model, PREFILL_CHUNK_ATTRIBUTE, None)
        self.root_forward = needs_root_forward(model) if root_forward is None else bool(root_forward)

    # ------------------------------------------------------------------ strategy

    @property
    def root_forward(self) -> bool:
        """Whether the root-forward strategy runs the passes; setting it switches strategy."""
        return isinstance(self.strategy, RootForwardStrategy)

    @root_forward.setter
    def root_forward(self, value: bool) -> None:
        self.strategy: ExecutionStrategy = RootForwardStrategy(self) if value else CachedPrefixStrategy(self)

    @property
    def lockstep(self) -> bool:
        """Whether every process must run the same passes (FSDP's collectives pair up across
        processes): a caller then runs ``placeholder_variant`` passes for the ones it skips."""
        return self.strategy.lockstep

    # ------------------------------------------------------------------ inputs

    @property
    def device(self) -> torch.device:
        weight = self.lm_head.weight
        mesh = getattr(weight, "device_mesh", None)  # an FSDP2 shard: compute runs on the mesh's device
        if mesh is not None and mesh.device_type != weight.device.type:  # (the shard may be offloaded to CPU)
            module = torch.get_device_module(mesh.device_type)
            return torch.device(mesh.device_type, module.current_device())
        return weight.device

    def _check_prompt_inputs(self, prompt_inputs: Mapping[str, torch.Tensor]) -> None:
        if not isinstance(prompt_inputs, Mapping) or "input_ids" not in prompt_inputs:
            raise ValueError("prompt_inputs must be the processor's output (a mapping with 'input_ids')")
        if any(pixels in prompt_inputs and grid not in prompt_inputs for pixels, grid in PIXEL_GRIDS):
            raise ValueError("prompt_inputs has pixel values without their grid_thw; pass the processor's whole output")
        input_ids = prompt_inputs["input_ids"]
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[0] != 1:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"prompt_inputs must hold ONE prompt: input_ids of shape [1, P], got {shape}")
        video_grid = prompt_inputs.get("video_grid_thw")
        if video_grid is not None and video_grid.shape[0] > 1:
            raise ValueError(
                f"prompt_inputs holds {video_grid.shape[0]} videos; attribution handles one video per prompt"
            )

    def prepare(self, prompt_inputs: Mapping[str, torch.Tensor]) -> PromptInputs:
        """Validate a processor output for one prompt and move it to the model's device."""
        self._check_prompt_inputs(prompt_inputs)
        values = {key: prompt_inputs.get(key) for key in PROMPT_KEYS}
        input_ids = values["input_ids"]
        keep = torch.ones_like(input_ids[0], dtype=torch.bool)
        if values["attention_mask"] is not None:
            keep = values["attention_mask"][0].bool()
        device = self.device
        input_ids = input_ids[:, keep.to(input_ids.device)].to(device)
        types = values["mm_token_type_ids"]
        if types is None:
            types = (input_ids == self.image_token_id).long() + 2 * (input_ids == self.video_token_id).long()
        else:
            types = types[:, keep.to(types.device)].to(device)

        def to_device(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else torch.as_tensor(tensor).to(device)

        return PromptInputs(
            input_ids=input_ids,
            mm_token_type_ids=types,
            pixel_values=to_device(values["pixel_values"]),
            image_grid_thw=to_device(values["image_grid_thw"]),
            pixel_values_videos=to_device(values["pixel_values_videos"]),
            video_grid_thw=to_device(values["video_grid_thw"]),
            second_per_grid_ts=to_device(values["second_per_grid_ts"]),
        )

    # ------------------------------------------------------------------ encoder

    def encode_video(self, pixel_values_videos: torch.Tensor, grid: torch.Tensor):
        """The vision encoder on a video's pixels (counted in ``encoder_calls``), in chunks of
        ``encoder_chunk_groups`` temporal groups when set (``set_encoder_chunking``)."""
        self.encoder_calls += 1
        chunk = self.encoder_chunk_groups
        if chunk is None or all(int(groups) <= chunk for groups in grid[:, 0]):
            return self.decoder_features(self.inner.get_video_features(pixel_values_videos, grid, return_dict=True))
        return self._encode_video_in_chunks(pixel_values_videos, grid, chunk)

    def _encode_video_in_chunks(self, pixel_values_videos: torch.Tensor, grid: torch.Tensor, chunk: int):
        """The encoder over ``chunk`` temporal groups at a time, its outputs joined: the same
        result as one call, because every family's encoder attends within one temporal group
        (its ``cu_seqlens`` cut at each group; Qwen2.5-VL's windows lie inside a frame) and its
        positions depend on the group's place in the frame, not on which group it is.

        Only one chunk's activations exist at once: without gradient they are freed chunk by
        chunk; with it (a trained encoder) each chunk is checkpointed, keeping only its output
        and running it again in the backward pass, one chunk at a time."""
        video_chunk_features = self._video_chunk_features
        if torch.is_grad_enabled() and any(parameter.requires_grad for parameter in self.inner.visual.parameters()):
            def video_chunk_features(pixels, piece_grid):
                return checkpoint(self._video_chunk_features, pixels, piece_grid, use_reentrant=False)

        per_video, start = [], 0
        for groups, height, width in grid.tolist():
            rows = height * width  # patch rows of one temporal group
            pieces = []
            for first in range(0, groups, chunk):
                count = min(chunk, groups - first)
                piece_grid = torch.tensor([[count, height, width]], dtype=grid.dtype, device=grid.device)
                pixels = pixel_values_videos[start + first * rows : start + (first + count) * rows]
                pieces.append(video_chunk_features(pixels, piece_grid))
            per_video.append(pieces)
            start += groups * rows
        first = per_video[0][0]
        fields = {"pooler_output": tuple(torch.cat([piece.pooler_output[0] for piece in pieces])
                                         for pieces in per_video)}
        deepstack = getattr(first, "deepstack_features", None)
        if deepstack is not None:  # Qwen3-VL: per layer, per video, the same row layout
            fields["deepstack_features"] = [
                tuple(torch.cat([piece.deepstack_features[layer][0] for piece in pieces]) for pieces in per_video)
                for layer in range(len(deepstack))
            ]
        return type(first)(**fields)

    def _video_chunk_features(self, pixels: torch.Tensor, grid: torch.Tensor):
        return self.decoder_features(self.inner.get_video_features(pixels, grid, return_dict=True))

    def encode_image(self, pixel_values: torch.Tensor, grid: torch.Tensor):
        """The vision encoder on an image's pixels (counted in ``encoder_calls``)."""
        self.encoder_calls += 1
        return self.decoder_features(self.inner.get_image_features(pixel_values, grid, return_dict=True))

    def encode(self, prompt: PromptInputs) -> dict:
        """Run the vision encoder once for the prompt's image(s) and video."""
        return self.strategy.encode(prompt)

    @staticmethod
    def map_feature_tuples(output, transform: Callable[[tuple], tuple]):
        """A copy of an encoder output holding only what the decoder reads, with ``transform``
        applied to each tuple of per-item feature tensors: the merged embeddings, and per layer
        Qwen3-VL's deepstack features (laid out row for row like them)."""
        fields = {"pooler_output": transform(tuple(output.pooler_output))}
        deepstack = getattr(output, "deepstack_features", None)
        if deepstack is not None:
            fields["deepstack_features"] = [transform(tuple(layer)) for layer in deepstack]
        return type(output)(**fields)

    @staticmethod
    def map_features(output, transform: Callable[[torch.Tensor], torch.Tensor]):
        """A copy of an encoder output with ``transform`` applied to every visual feature tensor
        the decoder reads (the merged embeddings, and Qwen3-VL's deepstack features)."""
        return QwenVLAdapter.map_feature_tuples(output, lambda items: tuple(transform(item) for item in items))

    @staticmethod
    def decoder_features(output):
        """What the decoder reads of an encoder output (the merged embeddings, Qwen3-VL's
        deepstack features), without the encoder's last hidden state, which is several times
        their size and would otherwise live as long as the features do."""
        return QwenVLAdapter.map_feature_tuples(output, lambda items: items)

    @staticmethod
    def feature_rows(output, start: int, stop: int):
        """An encoder output holding rows ``[start, stop)`` of its items' concatenation (the
        features of the prompt's ``start``-th to ``stop``-th placeholder token), as views of the
        items they lie in: a prefill chunk's share of the features, with nothing copied."""

        def rows(items: tuple) -> tuple:
            taken, offset = [], 0
            for item in items:
                low, high = max(start - offset, 0), min(stop - offset, item.shape[0])
                if low < high:
                    taken.append(item[low:high])
                offset += item.shape[0]
            return tuple(taken)

        return QwenVLAdapter.map_feature_tuples(output, rows)

    # ------------------------------------------------------------------ variants

    def real_variant(self, prompt: PromptInputs, features: dict) -> PromptVariant:
        return PromptVariant(
            input_ids=prompt.input_ids,
            mm_token_type_ids=prompt.mm_token_type_ids,
            encoder_outputs=dict(features),
            image_grid_thw=prompt.image_grid_thw,
            video_grid_thw=prompt.video_grid_thw,
            second_per_grid_ts=prompt.second_per_grid_ts,
        )

    def visual_counterfactual(self, prompt: PromptInputs, features: dict, mode: str) -> PromptVariant:
        """The prompt without its visual content.

        ``zero_embeddings``: every visual embedding (and deepstack feature) set to zero at its
        own position; tokens and positions unchanged (the paper's "video features zeroed").
        ``drop_tokens``: the image/video placeholder tokens removed, the remaining tokens
        numbered as text (what the official code's attention-mask removal computes).
        ``zero_pixels``: the normalised pixel values set to zero and encoded again.
        """
        if mode == "zero_embeddings":
            zeroed = {key: self.map_features(output, torch.zeros_like) for key, output in features.items()}
            return replace(self.real_variant(prompt, features), encoder_outputs=zeroed)
        if mode == "zero_pixels":
            zeroed = {key: torch.zeros_like(getattr(prompt, key)) for key, _ in PIXEL_GRIDS
                      if getattr(prompt, key) is not None}
            return self.strategy.reencoded_variant(prompt, features, zeroed)
        if mode == "drop_tokens":
            keep = prompt.mm_token_type_ids[0] == 0
            return PromptVariant(
                input_ids=prompt.input_ids[:, keep],
                mm_token_type_ids=prompt.mm_token_type_ids[:, keep],
            )
        raise ValueError(f"visual_mode must be one of {', '.join(VISUAL_MODES)}; got {mode!r}")

    def permute_group_rows(self, rows: torch.Tensor, grid: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Reorder merged video embeddings ``[t*h*w/m^2, D]`` so group ``i`` holds old group ``order[i]``."""
        groups = int(grid[0])
        return rows.reshape(groups, -1, rows.shape[-1])[order.to(rows.device)].reshape(rows.shape)

    def permute_frames(self, pixel_values_videos: torch.Tensor, grid: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Reorder the *frames* inside the processor's patch layout, as if the decoded frames had
        been permuted before the processor ran (per-frame resizing and normalisation commute
        with the permutation). Rows are (t, h-block, w-block, mh, mw), columns (C, tp, p, p)."""
        groups, tp = int(grid[0]), self.temporal_patch_size
        rows, columns = pixel_values_videos.shape
        pixels = self.patch_size * self.patch_size
        channels = columns // (tp * pixels)
        x = pixel_values_videos.reshape(groups, rows // groups, channels, tp, pixels)
        frames = x.permute(0, 3, 1, 2, 4).reshape(groups * tp, rows // groups, channels, pixels)
        frames = frames[order.to(frames.device)]
        x = frames.reshape(groups, tp, rows // groups, channels, pixels).permute(0, 2, 3, 1, 4)
        return x.reshape(rows, columns)

    def temporal_counterfactual(
        self, prompt: PromptInputs, features: dict, order: torch.Tensor, mode: str
    ) -> PromptVariant:
        """The prompt with its video's frame order changed.

        ``permute_groups``: ``order`` permutes temporal patch groups; the encoder's output rows
        (and deepstack features) are permuted, nothing is re-encoded. ``raw_frames``: ``order``
        permutes frames; the permuted pixels are encoded again (the official behaviour).
        """
        grid = prompt.video_grid_thw[0]
        if mode == "permute_groups":
            video = self.map_features(features["video"], lambda rows: self.permute_group_rows(rows, grid, order))
            return replace(self.real_variant(prompt, features), encoder_outputs={**features, "video": video})
        if mode == "raw_frames":
            shuffled = self.permute_frames(prompt.pixel_values_videos, grid, order)
            return self.strategy.reencoded_variant(prompt, features, {"pixel_values_videos": shuffled})
        raise ValueError(f"temporal_mode must be one of {', '.join(TEMPORAL_MODES)}; got {mode!r}")

    def placeholder_variant(self, prompt: PromptInputs, features: dict, temporal_mode: str) -> PromptVariant:
        """A variant whose pass has the shape of a temporal counterfactual's (the same modules
        run), for a prompt that has none (an image, a one-group video): under ``lockstep`` the
        caller scores it and discards the result, so every process runs the same passes.
        ``raw_frames`` re-encodes the prompt's own pixels, as a shuffle would re-encode."""
        if temporal_mode == "raw_frames":
            own_pixels = {key: getattr(prompt, key) for key, _ in PIXEL_GRIDS if getattr(prompt, key) is not None}
            return self.strategy.reencoded_variant(prompt, features, own_pixels)
        return replace(
            self.real_variant(prompt, features),
            encoder_outputs={key: self.map_features(output, lambda item: item) for key, output in features.items()},
        )

    # ------------------------------------------------------------------ scoring

    def rope_positions(self, variant: PromptVariant, completion_length: int) -> torch.Tensor:
        """``[3, 1, P' + T]`` positions of the prompt followed by ``T`` text tokens, from the
        family's ``get_rope_index`` exactly as a plain forward over the whole sequence computes them."""
        ids = variant.input_ids
        tail = ids.new_zeros(1, completion_length)  # completion tokens are text: only their type matters
        full_ids = torch.cat([ids, tail], dim=1)
        full_types = torch.cat([variant.mm_token_type_ids, variant.mm_token_type_ids.new_zeros(1, completion_length)], 1)
        if not bool(full_types.any()):
            return torch.arange(full_ids.shape[1], device=ids.device).view(1, 1, -1).expand(3, 1, -1)
        extra = {key: getattr(variant, key) for key in self.rope_extra_keys}
        positions, _ = self.inner.get_rope_index(
            full_ids,
            mm_token_type_ids=full_types,
            image_grid_thw=variant.image_grid_thw,
            video_grid_thw=variant.video_grid_thw,
            **extra,
        )
        return positions

    def score_completions(
        self,
        variant: PromptVariant,
        completion_ids: torch.Tensor,
        chunk_size: int | None,
        with_entropy: bool,
        temperature: float = 1.0,
        with_gradient_weight: bool = False,
    ) -> TokenLogStats:
        """Log-probs ``[G, T]`` (and entropy, gradient weight) of the completions given this
        prompt variant, from one chunked pass (``core.signals.token_log_stats``)."""
        return self.strategy.score_completions(variant, completion_ids, chunk_size, with_entropy, temperature,
                                               with_gradient_weight)

    def logps_from_hidden(
        self,
        hidden: torch.Tensor,
        token_ids: torch.Tensor,
        chunk_size: int | None,
        with_entropy: bool,
        temperature: float = 1.0,
        with_gradient_weight: bool = False,
    ) -> TokenLogStats:
        """``lm_head`` + log-softmax over chunks of ``chunk_size`` positions."""
        flat_hidden = hidden.reshape(-1, hidden.shape[-1])
        flat_ids = token_ids.reshape(-1)
        step = chunk_size or max(flat_ids.shape[0], 1)
        chunks = []
        for start in range(0, flat_ids.shape[0], step):
            logits = self.lm_head(flat_hidden[start : start + step])
            if temperature != 1.0:
                logits = logits / temperature
            chunks.append(token_log_stats(logits, flat_ids[start : start + step], chunk_size=None,
                                          with_entropy=with_entropy, with_gradient_weight=with_gradient_weight))

        def joined(index: int) -> torch.Tensor | None:
            parts = [chunk[index] for chunk in chunks]
            return torch.cat(parts).reshape(token_ids.shape) if parts and parts[0] is not None else None

        return TokenLogStats(joined(0), joined(1), joined(2))

    # ------------------------------------------------------------------ the training forward

    def policy_logps(
        self,
        forward: Callable,
        prompt: PromptInputs,
        completion_ids: torch.Tensor,
        chunk_size: int | None,
        temperature: float = 1.0,
        share_prefix: bool = True,
    ) -> torch.Tensor:
        """Log-probs ``[G, T]`` of the completions *with gradient*, for the loss.

        ``forward`` is the (possibly DDP/DeepSpeed/FSDP-wrapped) model's ``__call__``: the
        cached-prefix strategy sends exactly one call through it per prompt, so a distributed
        wrapper sees one forward per backward. ``share_prefix=False`` (needed under gradient
        checkpointing, which drops KV caches) runs ``[G, P + T]`` full sequences instead, still
        encoding the video once. See each strategy's ``policy_logits``.
        """
        return self.policy_log_stats(forward, prompt, completion_ids, chunk_size, temperature, share_prefix).logps

    def policy_log_stats(
        self,
        forward: Callable,
        prompt: PromptInputs,
        completion_ids: torch.Tensor,
        chunk_size: int | None,
        temperature: float = 1.0,
        share_prefix: bool = True,
        with_entropy: bool = False,
        with_gradient_weight: bool = False,
        features: dict | None = None,
    ) -> TokenLogStats:
        """``policy_logps``'s pass, with what a no-grad scoring pass of the real input would have
        given besides: the entropy and gradient weight (detached, ``core.signals.token_log_stats``).
        So the trainer scores the real input inside the loss's own forward instead of in a
        forward of its own. ``features``: the prompt's encoder output when the caller ran the
        encoder first (``encode``, with gradient where the encoder trains; not under the
        root-forward strategy, whose encoder runs inside the wrapped forward)."""
        logits = self.strategy.policy_logits(forward, prompt, completion_ids, share_prefix, features)
        if temperature != 1.0:
            logits = logits / temperature
        return token_log_stats(logits, completion_ids, chunk_size=chunk_size, with_entropy=with_entropy,
                               with_gradient_weight=with_gradient_weight)
