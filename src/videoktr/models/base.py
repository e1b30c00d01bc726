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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


class QwenVLAdapter:
    """Base adapter; a subclass per family declares what differs (see ``models/qwen*.py``)."""

    #: ``config.model_type`` values this adapter serves.
    model_types: tuple[str, ...] = ()
    #: keyword arguments of the family's ``get_rope_index`` beyond ids, types and grids.
    rope_extra_keys: tuple[str, ...] = ()

    def __init__(self, model: torch.nn.Module) -> None:
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

    # ------------------------------------------------------------------ inputs

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

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
        """Run the vision encoder once for the prompt's image(s) and video."""
        outputs = {}
        if prompt.pixel_values is not None:
            outputs["image"] = self._encode_image(prompt.pixel_values, prompt.image_grid_thw)
        if prompt.pixel_values_videos is not None:
            outputs["video"] = self._encode_video(prompt.pixel_values_videos, prompt.video_grid_thw)
        return outputs

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
        elif mode == "raw_frames":
            shuffled = self.permute_frames(prompt.pixel_values_videos, grid, order)
            video = self._encode_video(shuffled, prompt.video_grid_thw)
        else:
            raise ValueError(f"temporal_mode must be one of {', '.join(TEMPORAL_MODES)}; got {mode!r}")
        return replace(self.real_variant(prompt, features), encoder_outputs={**features, "video": video})

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
        """
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
        if temperature != 1.0:
            logits = logits / temperature
        logps, _ = token_logps_and_entropy(logits, completion_ids, chunk_size=chunk_size, with_entropy=False)
        return logps
