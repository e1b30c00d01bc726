"""Tiny random-weight Qwen2-VL, Qwen2.5-VL and Qwen3-VL models and their real processors.

Every mechanism of the real architectures stays switched on at toy size (GQA, M-RoPE with the
real (t, h, w) proportions, Qwen2.5-VL's windowed vision attention, Qwen3-VL's deepstack and
learned position embeddings); the real processor classes keep the real patch, temporal-patch
and merge sizes with a small pixel budget. See the package docstring for how to call them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    PretrainedConfig,
    PreTrainedTokenizerFast,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from .tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tokenizer

__all__ = ["FAMILIES", "build_config", "build_processor", "build_tiny_model", "save_tiny_model"]

# Per-family vision settings that must match the real checkpoints' preprocessing (patch 14 and
# CLIP normalisation for Qwen2/2.5-VL; patch 16 and 0.5/0.5 normalisation for Qwen3-VL).
_PATCH_SIZE = {"qwen2_vl": 14, "qwen2_5_vl": 14, "qwen3_vl": 16}
_TEMPORAL_PATCH_SIZE = 2
_MERGE_SIZE = 2

_CONFIG_CLASSES = {
    "qwen2_vl": Qwen2VLConfig,
    "qwen2_5_vl": Qwen2_5_VLConfig,
    "qwen3_vl": Qwen3VLConfig,
}
_MODEL_CLASSES = {
    "qwen2_vl": Qwen2VLForConditionalGeneration,
    "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
    "qwen3_vl": Qwen3VLForConditionalGeneration,
}
_PROCESSOR_CLASSES = {
    "qwen2_vl": Qwen2VLProcessor,
    "qwen2_5_vl": Qwen2_5_VLProcessor,
    "qwen3_vl": Qwen3VLProcessor,
}

FAMILIES = tuple(_MODEL_CLASSES)


def _check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
    return family


def _video_pixel_budget(family: str) -> dict[str, int]:
    """Video ``size`` bounds giving a few to ~32 merged tokens per temporal patch of a small clip.

    Qwen2/2.5-VL bound the pixels of one frame; Qwen3-VL bounds the pixels of the whole clip
    (frames x height x width), so its numbers are per-clip. Both keep 64x64 frames at 64x64-ish
    (4x4 patches) and 112x112 frames near full resolution (8x8 patches) for 8-frame clips.
    """
    factor = _PATCH_SIZE[family] * _MERGE_SIZE
    if family == "qwen3_vl":
        return {"shortest_edge": 8 * factor * factor, "longest_edge": 8 * 32 * factor * factor}
    return {"shortest_edge": 4 * factor * factor, "longest_edge": 32 * factor * factor}


def build_processor(
    family: str, tokenizer: PreTrainedTokenizerFast | None = None
) -> ProcessorMixin:
    """Return the family's real processor with a small pixel budget, so tiny clips stay cheap.

    The real classes are used (``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor`` /
    ``Qwen3VLProcessor`` with ``Qwen2VLImageProcessor`` and ``Qwen2VLVideoProcessor`` /
    ``Qwen3VLVideoProcessor``) because placeholder expansion, grids and timing inputs
    (``second_per_grid_ts``, Qwen3-VL timestamps) are exactly what the code under test consumes.
    Patch size (14, or 16 for Qwen3-VL), temporal patch size 2 and merge size 2 are the real ones.

    ``do_sample_frames`` is ``False`` for every family: frames passed in are all kept, because
    callers decode and sample clips themselves (Qwen3-VL's stock default would resample them at
    2 fps of an assumed 24 fps clip). See the module docstring for how to pass timing metadata.
    ``cap_pixels_per_frame=True`` adopts the reference (qwen-vl-utils) pixel cap and silences
    transformers' warning about its upcoming default; it changes nothing at these sizes.
    """
    _check_family(family)
    tokenizer = build_tokenizer() if tokenizer is None else tokenizer
    patch = _PATCH_SIZE[family]
    factor = patch * _MERGE_SIZE
    common = dict(
        patch_size=patch, temporal_patch_size=_TEMPORAL_PATCH_SIZE, merge_size=_MERGE_SIZE
    )
    if family == "qwen3_vl":
        # Qwen3-VL normalises with mean = std = 0.5 (its SigLIP-2 style encoder), not CLIP stats.
        common.update(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])

    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 4 * factor * factor, "longest_edge": 64 * factor * factor}, **common
    )
    video_class = Qwen3VLVideoProcessor if family == "qwen3_vl" else Qwen2VLVideoProcessor
    video_processor = video_class(
        size=_video_pixel_budget(family),
        do_sample_frames=False,
        cap_pixels_per_frame=True,
        **common,
    )
    return _PROCESSOR_CLASSES[family](
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template or CHAT_TEMPLATE,
    )


def _mrope_section(family: str, head_dim: int) -> list[int]:
    """Split ``head_dim // 2`` rotary frequencies into (t, h, w) like the real checkpoints do.

    Qwen2/2.5-VL use [16, 24, 24] of 64 (a quarter for time); Qwen3-VL uses [24, 20, 20] of 64
    with interleaved h/w frequencies, which needs 3 * h and 3 * w to fit in the half dimension.
    """
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for rotary embeddings, got {head_dim}")
    half = head_dim // 2
    if family == "qwen3_vl":
        h = w = half * 20 // 64
        return [half - h - w, h, w]
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def _deepstack_indexes(vision_depth: int, num_layers: int) -> list[int]:
    """Vision blocks that feed Qwen3-VL's deepstack, spread like the real [8, 16, 24] of 27.

    Each index injects features into one of the first text layers, so there can be no more
    indexes than text layers.
    """
    indexes = sorted({vision_depth * k // 4 for k in (1, 2, 3)})
    return indexes[:num_layers]


def _text_config(family: str, ids: dict[str, int], vocab_size: int, hidden_size: int, intermediate_size: int,
                 num_layers: int, num_heads: int, num_kv_heads: int, max_position_embeddings: int) -> dict[str, Any]:
    return dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 5_000_000.0 if family == "qwen3_vl" else 1_000_000.0,
            "mrope_section": _mrope_section(family, hidden_size // num_heads),
        },
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )


def _vision_config(family: str, hidden_size: int, num_layers: int, vision_hidden_size: int, vision_depth: int,
                   vision_heads: int, vision_intermediate_size: int) -> dict[str, Any]:
    vision_config: dict[str, Any] = dict(
        depth=vision_depth,
        num_heads=vision_heads,
        patch_size=_PATCH_SIZE[family],
        spatial_merge_size=_MERGE_SIZE,
        temporal_patch_size=_TEMPORAL_PATCH_SIZE,
    )
    if family == "qwen2_vl":
        # Qwen2-VL's vision width is `embed_dim`; its `hidden_size` is the merger's output width.
        vision_config.update(
            embed_dim=vision_hidden_size,
            hidden_size=hidden_size,
            mlp_ratio=max(1, vision_intermediate_size // vision_hidden_size),
        )
    elif family == "qwen2_5_vl":
        vision_config.update(
            hidden_size=vision_hidden_size,
            intermediate_size=vision_intermediate_size,
            out_hidden_size=hidden_size,
            # 56 px = 2x2 merged tokens per window, so a 112x112 frame already spans 4 windows.
            window_size=_PATCH_SIZE[family] * _MERGE_SIZE * 2,
            # Alternate windowed and full attention; the last block is always full, as in the
            # real [7, 15, 23, 31] of 32.
            fullatt_block_indexes=list(range(1, vision_depth, 2)) or [vision_depth - 1],
            tokens_per_second=2,
        )
    else:
        vision_config.update(
            hidden_size=vision_hidden_size,
            intermediate_size=vision_intermediate_size,
            out_hidden_size=hidden_size,
            # Learned positions on a 16x16 grid (256 px at patch 16), bilinearly interpolated to
            # other grids by the model, as the real 48x48 table is.
            num_position_embeddings=16 * 16,
            deepstack_visual_indexes=_deepstack_indexes(vision_depth, num_layers),
        )
    return vision_config


def build_config(
    family: str,
    tokenizer: PreTrainedTokenizerFast,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    vision_hidden_size: int = 64,
    vision_depth: int = 2,
    vision_heads: int = 4,
    vision_intermediate_size: int | None = None,
    vocab_size: int | None = None,
    max_position_embeddings: int = 32768,
) -> PretrainedConfig:
    """Build a small but structurally faithful config for ``family``.

    Faithful means every mechanism of the real architecture stays switched on at toy size: GQA
    (``num_kv_heads < num_heads``), M-RoPE with a (t, h, w) split of the real proportions,
    Qwen2.5-VL's windowed vision attention with full-attention blocks, Qwen3-VL's deepstack and
    learned position embeddings. The sizes default to a ~0.4-0.6M-parameter model that runs in
    milliseconds on CPU; pass larger values (e.g. ``hidden_size=512, num_layers=8,
    vision_hidden_size=256, vision_depth=8``) for a benchmark-sized model. ``intermediate_size``
    defaults to ``2 * hidden_size`` and ``vision_intermediate_size`` to ``4 * vision_hidden_size``.

    Token ids (image/video/vision-start/end, eos, pad, bos) come from ``tokenizer``;
    ``vocab_size`` defaults to ``len(tokenizer)``, so every id the model can emit decodes.
    """
    _check_family(family)
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            "hidden_size must be divisible by num_heads, and num_heads by num_kv_heads"
        )
    if vision_hidden_size % vision_heads:
        raise ValueError("vision_hidden_size must be divisible by vision_heads")
    if vocab_size is None:
        vocab_size = len(tokenizer)
    elif vocab_size < len(tokenizer):
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the tokenizer ({len(tokenizer)} tokens)"
        )
    intermediate_size = 2 * hidden_size if intermediate_size is None else intermediate_size
    vision_intermediate_size = (
        4 * vision_hidden_size if vision_intermediate_size is None else vision_intermediate_size
    )

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    text_config = _text_config(family, ids, vocab_size, hidden_size, intermediate_size, num_layers, num_heads,
                               num_kv_heads, max_position_embeddings)
    vision_config = _vision_config(family, hidden_size, num_layers, vision_hidden_size, vision_depth, vision_heads,
                                   vision_intermediate_size)
    if family == "qwen3_vl":
        text_config.update(head_dim=hidden_size // num_heads)
        text_config["rope_parameters"]["mrope_interleaved"] = True
    return _CONFIG_CLASSES[family](
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_tiny_model(
    family: str,
    seed: int = 0,
    tokenizer: PreTrainedTokenizerFast | None = None,
    **config_overrides: Any,
) -> tuple[torch.nn.Module, ProcessorMixin]:
    """Build a random-weight model and its processor, for tests and demos without downloads.

    The weights are a deterministic function of ``seed`` and the config (the global torch RNG is
    left untouched). The model is float32 and in eval mode. ``tokenizer`` defaults to
    :func:`build_tokenizer` on the built-in corpus; pass one trained on your own text (e.g. the
    synthetic world's) to fit the vocabulary to it. ``config_overrides`` are passed to
    :func:`build_config` (``hidden_size``, ``num_layers``, ``vision_depth``, ...). The generation
    config stops on ``<|im_end|>`` and pads with ``<|endoftext|>``, like the real instruct models.
    """
    _check_family(family)
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    processor = build_processor(family, tokenizer)
    config = build_config(family, tokenizer, **config_overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _MODEL_CLASSES[family](config)
    model = model.to(torch.float32).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return model, processor


def save_tiny_model(
    family: str, out_dir: str | Path, seed: int = 0, **config_overrides: Any
) -> Path:
    """Write a tiny model and its processor as a local checkpoint directory.

    Code that takes a model path (CLI, trainers, ``from_pretrained``) can then be tested on a
    checkpoint that loads offline with ``AutoModelForImageTextToText.from_pretrained(out_dir)``
    (or the family class) and ``AutoProcessor.from_pretrained(out_dir)``. Weights are safetensors.
    """
    model, processor = build_tiny_model(family, seed=seed, **config_overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # transformers 5 always writes safetensors
    processor.save_pretrained(out_dir)
    return out_dir
