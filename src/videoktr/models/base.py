"""The machinery every Qwen-VL adapter shares: encode once, build counterfactuals, score cheaply.

How a scoring pass works (``QwenVLAdapter.score_completions``):

1. The prompt (one video or image + text, batch 1) runs once through the decoder with its
   visual features *already computed* (transformers' ``mm_encoder_outputs`` argument), and
   leaves a KV cache.
2. The cache is repeated for the ``G`` completions, which run as one ``[G, T]`` batch on top
   of it: the prompt is never recomputed per completion.
3. Log-probs (and, for the real input, the entropy) come from the decoder's hidden states
   chunk by chunk through ``lm_head``: no ``[G, T, vocab]`` logits tensor is ever built.

Positions come from the family's own ``get_rope_index`` on the whole prompt + completion
sequence, exactly as a plain forward computes them, so the cached path reproduces it.

Counterfactual inputs are *variants* of the prompt that differ only in the visual features
(or, for ``drop_tokens``, in the tokens). Because every Qwen-VL vision encoder attends within
one temporal patch group at a time and its positions depend only on the grid, permuting the
encoder's output rows group by group equals encoding group-permuted frames: the temporal
counterfactual needs no second encoder run.

Under FSDP (``root_forward`` mode, chosen automatically when the model is FSDP-wrapped or its
parameters are partitioned by DeepSpeed ZeRO-3, see ``needs_root_forward``) every
pass goes through the model's *root* forward, ``model(...)``, because FSDP gathers the
parameters that no nested FSDP unit owns (embeddings, ``lm_head``, norms, the vision
encoder's patch embedding and merger) only inside it. The same savings survive: the prompt
runs once per variant (a root forward with ``use_cache``, its cache repeated for the ``G``
completions, which run in a second root forward), and the vision encoder still runs once per
prompt (the first root forward returns the encoder's output, which later passes take back as
``mm_encoder_outputs``, zeroed or permuted). What is lost is the chunked ``lm_head``: the root
forward returns the ``[G, T, vocab]`` logits, and ``chunk_size`` then bounds the log-softmax
only. Every process must run the same sequence of root forwards (FSDP's collectives pair up
across processes), so passes that a prompt does not need (the temporal counterfactual of an
image) run as placeholders (``lockstep``, ``placeholder_variant``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import torch

from ..core.signals import token_logps_and_entropy

VISUAL_MODES = ("zero_embeddings", "drop_tokens", "zero_pixels")
TEMPORAL_MODES = ("permute_groups", "raw_frames")

# Keys of a processor's output that describe the prompt; anything else is ignored.
_PROMPT_KEYS = (
    "input_ids",
    "attention_mask",
    "mm_token_type_ids",
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
)


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
    process must call the same modules the same number of times: the fast path's chunked
    ``lm_head`` (one call per chunk of each process's own completions) and skipped passes for
    images would pair collectives up wrongly. The root-forward path keeps processes in step."""
    return any(hasattr(parameter, "ds_id") for parameter in model.parameters())


def needs_root_forward(model: torch.nn.Module) -> bool:
    """Whether the adapter must run every pass through ``model(...)`` in lockstep: FSDP, or
    DeepSpeed ZeRO-3."""
    return is_fsdp_wrapped(model) or is_zero3_partitioned(model)


@dataclass
class _StashedPrefix:
    """The real prompt's root-forward prefix pass, kept by ``encode`` for the real scoring pass."""

    input_ids: torch.Tensor
    features: dict
    first_logits: torch.Tensor  # [1, 1, V]: the prompt's last position
    cache: object


@dataclass
class PromptInputs:
    """One prompt as the processor produced it, batch 1, on the model's device, padding removed."""

    input_ids: torch.Tensor  # [1, P]
    mm_token_type_ids: torch.Tensor  # [1, P]: 0 text, 1 image, 2 video
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None
    pixel_values_videos: torch.Tensor | None = None
    video_grid_thw: torch.Tensor | None = None
    second_per_grid_ts: torch.Tensor | None = None

    @property
    def num_temporal_groups(self) -> int:
        """Temporal patch groups of the prompt's video (0 without a video)."""
        return 0 if self.video_grid_thw is None else int(self.video_grid_thw[0, 0])


@dataclass
class PromptVariant:
    """A prompt as the decoder sees it: tokens plus (possibly altered) visual features."""

    input_ids: torch.Tensor  # [1, P']
    mm_token_type_ids: torch.Tensor  # [1, P']
    encoder_outputs: dict = field(default_factory=dict)  # "image"/"video" -> encoder output
    image_grid_thw: torch.Tensor | None = None
    video_grid_thw: torch.Tensor | None = None
    second_per_grid_ts: torch.Tensor | None = None
    #: root-forward mode only: pixel inputs (``pixel_values``/``pixel_values_videos`` and their
    #: grids) the root forward encodes itself, for variants that re-encode (``zero_pixels``,
    #: ``raw_frames``); ``encoder_outputs`` is then empty.
    pixel_inputs: dict = field(default_factory=dict)


class QwenVLAdapter:
    """Base adapter; a subclass per family declares what differs (see ``models/qwen*.py``)."""

    #: ``config.model_type`` values this adapter serves.
    model_types: tuple[str, ...] = ()
    #: keyword arguments of the family's ``get_rope_index`` beyond ids, types and grids.
    rope_extra_keys: tuple[str, ...] = ()

    def __init__(self, model: torch.nn.Module, root_forward: bool | None = None) -> None:
        self.model = model
        #: run every pass through ``model(...)`` in lockstep (FSDP, ZeRO-3); None: detect it.
        self.root_forward = needs_root_forward(model) if root_forward is None else bool(root_forward)
        self._stash: _StashedPrefix | None = None
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

    # ------------------------------------------------------------------ inputs

    @property
    def lockstep(self) -> bool:
        """Whether every process must run the same passes (FSDP's collectives pair up across
        processes): a caller then runs ``placeholder_variant`` passes for the ones it skips."""
        return self.root_forward

    @property
    def device(self) -> torch.device:
        weight = self.lm_head.weight
        mesh = getattr(weight, "device_mesh", None)  # an FSDP2 shard: compute runs on the mesh's device
        if mesh is not None and mesh.device_type != weight.device.type:  # (the shard may be offloaded to CPU)
            module = torch.get_device_module(mesh.device_type)
            return torch.device(mesh.device_type, module.current_device())
        return weight.device

    def prepare(self, prompt_inputs: Mapping[str, torch.Tensor]) -> PromptInputs:
        """Validate a processor output for one prompt and move it to the model's device."""
        if not isinstance(prompt_inputs, Mapping) or "input_ids" not in prompt_inputs:
            raise ValueError("prompt_inputs must be the processor's output (a mapping with 'input_ids')")
        unknown_video = "pixel_values_videos" in prompt_inputs and "video_grid_thw" not in prompt_inputs
        unknown_image = "pixel_values" in prompt_inputs and "image_grid_thw" not in prompt_inputs
        if unknown_video or unknown_image:
            raise ValueError("prompt_inputs has pixel values without their grid_thw; pass the processor's whole output")
        values = {key: prompt_inputs.get(key) for key in _PROMPT_KEYS}
        input_ids = values["input_ids"]
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[0] != 1:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(f"prompt_inputs must hold ONE prompt: input_ids of shape [1, P], got {shape}")
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
        video_grid = values["video_grid_thw"]
        if video_grid is not None and video_grid.shape[0] > 1:
            raise ValueError(
                f"prompt_inputs holds {video_grid.shape[0]} videos; attribution handles one video per prompt"
            )

        def to_device(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else torch.as_tensor(tensor).to(device)

        return PromptInputs(
            input_ids=input_ids,
            mm_token_type_ids=types,
            pixel_values=to_device(values["pixel_values"]),
            image_grid_thw=to_device(values["image_grid_thw"]),
            pixel_values_videos=to_device(values["pixel_values_videos"]),
            video_grid_thw=to_device(video_grid),
            second_per_grid_ts=to_device(values["second_per_grid_ts"]),
        )

    # ------------------------------------------------------------------ encoder

    def _encode_video(self, pixel_values_videos: torch.Tensor, grid: torch.Tensor):
        self.encoder_calls += 1
        return self.inner.get_video_features(pixel_values_videos, grid, return_dict=True)

    def _encode_image(self, pixel_values: torch.Tensor, grid: torch.Tensor):
        self.encoder_calls += 1
        return self.inner.get_image_features(pixel_values, grid, return_dict=True)

    def encode(self, prompt: PromptInputs) -> dict:
        """Run the vision encoder once for the prompt's image(s) and video.

        In root-forward mode this is the real prompt's prefix pass (a root forward that encodes
        the pixels on the way); its cache is kept for the next ``score_completions`` call on the
        real variant, so the prompt still runs once.
        """
        if self.root_forward:
            return self._encode_root(prompt)
        outputs = {}
        if prompt.pixel_values is not None:
            outputs["image"] = self._encode_image(prompt.pixel_values, prompt.image_grid_thw)
        if prompt.pixel_values_videos is not None:
            outputs["video"] = self._encode_video(prompt.pixel_values_videos, prompt.video_grid_thw)
        return outputs

    @staticmethod
    def _pixel_kwargs(source, repeat: int = 1) -> dict:
        """The root forward's pixel arguments of a ``PromptInputs`` (or a variant's
        ``pixel_inputs`` mapping); grids repeated ``repeat`` times (see ``_tiled_encoder``)."""
        get = source.get if isinstance(source, Mapping) else lambda key: getattr(source, key)
        kwargs = {}
        for pixels, grid in (("pixel_values", "image_grid_thw"), ("pixel_values_videos", "video_grid_thw")):
            if get(pixels) is not None:
                kwargs[pixels] = get(pixels)
                kwargs[grid] = get(grid).repeat(repeat, 1)
        return kwargs

    def _encode_root(self, prompt: PromptInputs) -> dict:
        self._stash = None
        pixels = self._pixel_kwargs(prompt)
        if not pixels:
            return {}
        positions = self.rope_positions(self.real_variant(prompt, {}), 0)
        self.encoder_calls += 1
        out = self.model(
            input_ids=prompt.input_ids, position_ids=positions, use_cache=True, logits_to_keep=1, **pixels
        )
        features = {}
        for key, output in (("image", out.image_outputs), ("video", out.video_outputs)):
            if output is not None:  # keep what the decoder reads, not the encoder's hidden states
                features[key] = self.map_features(output, lambda item: item)
        self._stash = _StashedPrefix(prompt.input_ids, features, out.logits[:, -1:], out.cache)
        return features

    @staticmethod
    def map_features(output, transform: Callable[[torch.Tensor], torch.Tensor]):
        """A copy of an encoder output with ``transform`` applied to every visual feature tensor
        the decoder reads (the merged embeddings, and Qwen3-VL's deepstack features)."""
        fields = {"pooler_output": tuple(transform(item) for item in output.pooler_output)}
        deepstack = getattr(output, "deepstack_features", None)
        if deepstack is not None:
            fields["deepstack_features"] = [tuple(transform(item) for item in layer) for layer in deepstack]
        return type(output)(**fields)

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
        if mode == "zero_pixels" and self.root_forward:
            pixels = self._pixel_kwargs(prompt)
            for key in ("pixel_values", "pixel_values_videos"):
                if key in pixels:
                    pixels[key] = torch.zeros_like(pixels[key])
            return replace(self.real_variant(prompt, features), encoder_outputs={}, pixel_inputs=pixels)
        if mode == "zero_pixels":
            encoded = {}
            if prompt.pixel_values is not None:
                encoded["image"] = self._encode_image(torch.zeros_like(prompt.pixel_values), prompt.image_grid_thw)
            if prompt.pixel_values_videos is not None:
                encoded["video"] = self._encode_video(
                    torch.zeros_like(prompt.pixel_values_videos), prompt.video_grid_thw
                )
            return replace(self.real_variant(prompt, features), encoder_outputs=encoded)
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
        elif mode == "raw_frames" and self.root_forward:
            pixels = self._pixel_kwargs(prompt)
            pixels["pixel_values_videos"] = self.permute_frames(prompt.pixel_values_videos, grid, order)
            return replace(self.real_variant(prompt, features), encoder_outputs={}, pixel_inputs=pixels)
        elif mode == "raw_frames":
            shuffled = self.permute_frames(prompt.pixel_values_videos, grid, order)
            video = self._encode_video(shuffled, prompt.video_grid_thw)
        else:
            raise ValueError(f"temporal_mode must be one of {', '.join(TEMPORAL_MODES)}; got {mode!r}")
        return replace(self.real_variant(prompt, features), encoder_outputs={**features, "video": video})

    def placeholder_variant(self, prompt: PromptInputs, features: dict, temporal_mode: str) -> PromptVariant:
        """A variant whose pass has the shape of a temporal counterfactual's (the same modules
        run), for a prompt that has none (an image, a one-group video): under ``lockstep`` the
        caller scores it and discards the result, so every process runs the same passes."""
        if temporal_mode == "raw_frames" and self.root_forward:
            return replace(self.real_variant(prompt, features), encoder_outputs={}, pixel_inputs=self._pixel_kwargs(prompt))
        if temporal_mode == "raw_frames":
            return self.visual_counterfactual(prompt, features, "zero_pixels")  # re-encodes, like raw_frames
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
        has_visual = bool(full_types.any())
        if not has_visual:
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
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probs ``[G, T]`` (and entropy) of the completions given this prompt variant."""
        if self.root_forward:
            return self._score_root(variant, completion_ids, chunk_size, with_entropy, temperature)
        num_completions, length = completion_ids.shape
        positions = self.rope_positions(variant, length)
        prompt_length = variant.input_ids.shape[1]
        prompt_out, cache = self._prefix(variant, positions, num_completions)
        completion_out = self.inner(
            input_ids=completion_ids,
            position_ids=positions[:, :, prompt_length:].expand(3, num_completions, length),
            cache=cache,
            use_cache=True,
        )
        # Position p's hidden state predicts token p + 1: the prompt's last state predicts the
        # first completion token, completion state t predicts token t + 1.
        last_prompt = prompt_out.last_hidden_state[:, -1:].expand(num_completions, 1, -1)
        predictors = torch.cat([last_prompt, completion_out.last_hidden_state[:, :-1]], dim=1)
        del prompt_out, completion_out, cache
        return self.logps_from_hidden(predictors, completion_ids, chunk_size, with_entropy, temperature)

    def _prefix(self, variant: PromptVariant, positions: torch.Tensor, num_completions: int):
        """Run the prompt once; its KV cache, repeated for the ``G`` completions to run on."""
        prompt_out = self.inner(
            input_ids=variant.input_ids,
            position_ids=positions[:, :, : variant.input_ids.shape[1]],
            mm_encoder_outputs=dict(variant.encoder_outputs) or None,
            use_cache=True,
        )
        cache = prompt_out.cache
        cache.batch_repeat_interleave(num_completions)
        return prompt_out, cache

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

    def _root_prefix(self, forward: Callable, variant: PromptVariant, positions: torch.Tensor, num_completions: int):
        """Root forward of the prompt: the logits of its last position ``[1, 1, V]`` and its KV
        cache repeated for the ``G`` completions."""
        prompt_length = variant.input_ids.shape[1]
        stash = self._take_stash(variant)
        if stash is not None:
            first_logits, cache = stash.first_logits, stash.cache
        else:
            kwargs = {}
            if variant.pixel_inputs:
                self.encoder_calls += 1
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

    def _root_completion_logits(self, forward: Callable, variant: PromptVariant, completion_ids: torch.Tensor):
        """``[G, T, V]`` logits predicting the completion tokens, from two root forwards: the
        prompt (cached) and the completions on its repeated cache."""
        num_completions, length = completion_ids.shape
        positions = self.rope_positions(variant, length)
        prompt_length = variant.input_ids.shape[1]
        first_logits, cache = self._root_prefix(forward, variant, positions, num_completions)
        out = forward(
            input_ids=completion_ids,
            position_ids=positions[:, :, prompt_length:].expand(3, num_completions, length),
            cache=cache,
            use_cache=True,
        )
        return torch.cat([first_logits.expand(num_completions, 1, -1), out.logits[:, :-1]], dim=1)

    def _score_root(self, variant, completion_ids, chunk_size, with_entropy, temperature):
        logits = self._root_completion_logits(self.model, variant, completion_ids)
        if temperature != 1.0:
            logits = logits / temperature
        return token_logps_and_entropy(logits, completion_ids, chunk_size=chunk_size, with_entropy=with_entropy)

    def logps_from_hidden(
        self,
        hidden: torch.Tensor,
        token_ids: torch.Tensor,
        chunk_size: int | None,
        with_entropy: bool,
        temperature: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``lm_head`` + log-softmax over chunks of ``chunk_size`` positions."""
        flat_hidden = hidden.reshape(-1, hidden.shape[-1])
        flat_ids = token_ids.reshape(-1)
        step = chunk_size or max(flat_ids.shape[0], 1)
        logps, entropy = [], []
        for start in range(0, flat_ids.shape[0], step):
            logits = self.lm_head(flat_hidden[start : start + step])
            if temperature != 1.0:
                logits = logits / temperature
            chunk_logps, chunk_entropy = token_logps_and_entropy(
                logits, flat_ids[start : start + step], chunk_size=None, with_entropy=with_entropy
            )
            logps.append(chunk_logps)
            entropy.append(chunk_entropy)
        out_logps = torch.cat(logps).reshape(token_ids.shape)
        out_entropy = torch.cat(entropy).reshape(token_ids.shape) if with_entropy else None
        return out_logps, out_entropy

    # ------------------------------------------------------------------ the training forward

    @staticmethod
    def _repeat_features(output, times: int):
        """An encoder output whose per-item tuples hold ``times`` copies (one per sequence)."""
        fields = {"pooler_output": tuple(output.pooler_output) * times}
        deepstack = getattr(output, "deepstack_features", None)
        if deepstack is not None:
            fields["deepstack_features"] = [tuple(layer) * times for layer in deepstack]
        return type(output)(**fields)

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

        ``forward`` is the (possibly DDP/DeepSpeed-wrapped) model's ``__call__``: exactly one
        call goes through it per prompt, so a distributed wrapper sees one forward per backward.
        The vision encoder and, with ``share_prefix``, the prompt prefix run on the inner
        modules with gradient: their parameters' gradients reach the same backward pass.

        ``share_prefix=False`` (needed under gradient checkpointing, which drops KV caches)
        runs ``[G, P + T]`` full sequences instead, still encoding the video once.

        In root-forward mode (FSDP) everything runs through ``forward``: with ``share_prefix``
        two root forwards (the prompt, which encodes the video, then the completions on its
        repeated cache; FSDP2 takes several forwards per backward), else one over ``[G, P + T]``
        in which the encoder's output is repeated for the ``G`` rows (``_tiled_encoder``).
        """
        logits = (
            self._policy_logits_root(forward, prompt, completion_ids, share_prefix) if self.root_forward
            else self._policy_logits(forward, prompt, completion_ids, share_prefix)
        )
        if temperature != 1.0:
            logits = logits / temperature
        logps, _ = token_logps_and_entropy(logits, completion_ids, chunk_size=chunk_size, with_entropy=False)
        return logps

    def _policy_logits(self, forward, prompt, completion_ids, share_prefix):
        """The fast path's logits ``[G, T, vocab]`` of the completions, with gradient."""
        features = self.encode(prompt)
        variant = self.real_variant(prompt, features)
        num_completions, length = completion_ids.shape
        positions = self.rope_positions(variant, length)
        prompt_length = variant.input_ids.shape[1]
        if share_prefix:
            prompt_out, cache = self._prefix(variant, positions, num_completions)
            first_logits = self.lm_head(prompt_out.last_hidden_state[:, -1:]).expand(num_completions, -1, -1)
            out = forward(
                input_ids=completion_ids,
                position_ids=positions[:, :, prompt_length:].expand(3, num_completions, length),
                cache=cache,
                use_cache=True,
            )
            logits = torch.cat([first_logits, out.logits[:, :-1]], dim=1)
        else:
            full_ids = torch.cat([variant.input_ids.expand(num_completions, -1), completion_ids], dim=1)
            repeated = {key: self._repeat_features(output, num_completions) for key, output in features.items()}
            out = forward(
                input_ids=full_ids,
                position_ids=positions.expand(3, num_completions, -1),
                mm_encoder_outputs=repeated or None,
                use_cache=False,
                logits_to_keep=length + 1,
            )
            logits = out.logits[:, :-1]
        return logits

    def _policy_logits_root(self, forward, prompt, completion_ids, share_prefix):
        """The same logits with every pass through the root forward (FSDP, ZeRO-3)."""
        variant = self.real_variant(prompt, {})
        if share_prefix:
            variant.pixel_inputs = self._pixel_kwargs(prompt)
            logits = self._root_completion_logits(forward, variant, completion_ids)
        else:
            num_completions, length = completion_ids.shape
            positions = self.rope_positions(variant, length)
            full_ids = torch.cat([variant.input_ids.expand(num_completions, -1), completion_ids], dim=1)
            pixels = self._pixel_kwargs(prompt, repeat=num_completions)
            self.encoder_calls += bool(pixels)
            with self._tiled_encoder(num_completions):
                out = forward(
                    input_ids=full_ids,
                    position_ids=positions.expand(3, num_completions, -1),
                    use_cache=False,
                    logits_to_keep=length + 1,
                    **pixels,
                )
            logits = out.logits[:, :-1]
        return logits

    @contextlib.contextmanager
    def _tiled_encoder(self, times: int) -> Iterator[None]:
        """Inside, the vision encoder encodes each image/video once and returns its output
        ``times`` times, as if it had been given ``times`` copies.

        The root forward is called with each grid repeated ``times`` times (one copy per
        sequence of the batch) but the pixels once: a pre-hook hands the encoder the grids of
        one copy, a hook tiles its output (merged embeddings and Qwen3-VL's deepstack features)
        to match the repeated grids. The gradient of every copy flows back into the one encoding.
        """
        visual = self.inner.visual

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
