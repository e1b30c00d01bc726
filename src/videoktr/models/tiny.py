"""Tiny random-weight Qwen2-VL, Qwen2.5-VL and Qwen3-VL models, built with nothing downloaded.

Video-KTR's machinery (rollouts, counterfactual forward passes, token attribution, GRPO updates)
has to be exercised end to end against the real Hugging Face model and processor classes, because
that is where the bugs live: placeholder expansion, M-RoPE position ids, ``video_grid_thw``,
``second_per_grid_ts``, deepstack features. Real checkpoints are gigabytes and need the network,
so tests and demos use this module instead. It builds, from config alone:

* a byte-level BPE tokenizer trained in a fraction of a second on a small built-in English corpus,
  carrying the Qwen special tokens and a Qwen2-VL style chat template;
* the family's real processor (``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor`` /
  ``Qwen3VLProcessor``) with the family's real image and video processors, keeping the real patch,
  temporal-patch and merge sizes but a small pixel budget, so that a clip of 8 frames costs
  16 video tokens at 64x64, 64 at 112x112 and at most 128 at any size;
* a randomly initialised ``*ForConditionalGeneration`` model with a 64-wide, 2-layer text decoder
  and a 2-block vision encoder (every size is a parameter, so benchmarks can scale it up).

Everything is deterministic: the same arguments give the same tokenizer and the same weights.

Calling the processor on video, as transformers 5.24 does it:

* Pass already-decoded frames, one clip per list item: a uint8 ``torch.Tensor`` ``[T, C, H, W]``
  or a numpy array ``[T, H, W, C]``. The video processors here are configured with
  ``do_sample_frames=False``, so every frame passed is kept: ``T`` frames give
  ``video_grid_thw[:, 0] == ceil(T / 2)`` (an odd last frame is repeated). Qwen3-VL's stock
  processor samples by default (``fps=2`` against an assumed 24 fps clip, i.e. it would keep only
  ``min_frames=4`` of 8 frames); we switch that off because callers decode and sample frames
  themselves. Pass ``do_sample_frames=True`` with ``fps=`` or ``num_frames=`` (and
  ``video_metadata``) to have the processor sample instead.
* Pass ``video_metadata={"total_num_frames": T, "fps": fps, "frames_indices": list(range(T))}``
  (one dict per clip, in a list for a batch) where ``fps`` is the frame rate of the frames as
  passed. Without it the processors assume 24 fps: Qwen2.5-VL then gets
  ``second_per_grid_ts = 2 / 24`` and Qwen3-VL writes ``<0.0 seconds>``-style timestamps computed
  at 24 fps (with a warning). Qwen2-VL ignores timing altogether.
* Qwen3-VL expands each ``<|video_pad|>`` into one ``<t seconds><|vision_start|>...<|vision_end|>``
  block per temporal patch, so its prompts hold extra timestamp text tokens and nested
  vision-start/end tokens; the number of ``<|video_pad|>`` tokens is still
  ``prod(video_grid_thw) / merge_size**2`` for every family.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import (
    PretrainedConfig,
    PreTrainedTokenizerFast,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Tokenizer,
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

__all__ = [
    "ANSWER_TOKENS",
    "CHAT_TEMPLATE",
    "CORPUS",
    "FAMILIES",
    "SPECIAL_TOKENS",
    "build_config",
    "build_processor",
    "build_tiny_model",
    "build_tokenizer",
    "save_tiny_model",
]

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

# Control tokens in the order the real Qwen vocabularies number them (the real ones sit at
# 151643, 151644, 151645, 151652, 151653, 151655, 151656); here they follow the trained BPE vocab.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Reasoning/answer tags: single tokens, so reward functions and key-token attribution can find
# them by id, but not special, so that decoding with skip_special_tokens=True keeps them (as in
# Qwen3's real vocabulary, where <think> and </think> are added but not special tokens).
ANSWER_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")

# The pre-tokenizer split of Qwen2's tokenizer (transformers.models.qwen2.tokenization_qwen2), so
# training sees the same word pieces the real Qwen2Tokenizer pipeline will produce at run time.
_QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Equivalent to the Qwen2-VL chat template (also what Qwen2.5-VL ships): a default system turn,
# `<|im_start|>role\n...<|im_end|>\n` turns, string or typed-list content, one vision placeholder
# per image/video item (the processor expands `<|image_pad|>` / `<|video_pad|>` to the grid's
# token count), optional "Picture n: " / "Video n: " labels with `add_vision_id=True`.
CHAT_TEMPLATE = (
    "{%- set counts = namespace(image=0, video=0) -%}"
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item or 'image_url' in item -%}"
    "{%- set counts.image = counts.image + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Picture ' + counts.image|string + ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "{%- set counts.video = counts.video + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Video ' + counts.video|string + ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in item -%}"
    "{{- item['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)

# Training text for the tiny BPE. Varied enough that common English words, the vocabulary of
# video QA (colours, shapes, motion, counting, ordering) and the reasoning/answer format become
# short token sequences, which keeps test prompts and generations short.
CORPUS = [
    "The video shows a red ball rolling across a wooden table.",
    "A blue square moves from the left side of the frame to the right side.",
    "First the green triangle appears, then it slowly fades away.",
    "How many circles are visible in the last frame of the video?",
    "There are three yellow stars and two purple hexagons on the screen.",
    "The camera pans to the left while the person walks forward.",
    "Because the ball bounces twice, the answer is B.",
    "However, the second clip shows the cube rotating clockwise.",
    "What colour is the car that enters the scene after the bicycle?",
    "The orange circle grows larger and then shrinks back to its original size.",
    "A small black dog runs behind the white fence and disappears.",
    "In the beginning, the screen is dark; later, a bright light turns on.",
    "Count the number of times the door opens during the video.",
    "The woman picks up a cup, drinks from it, and puts it down again.",
    "Which object moves fastest: the red car, the blue truck, or the green bus?",
    "The answer is C because the triangle moves upward in every frame.",
    "<think>The square starts on the left and ends on the right, so it moves right.</think>",
    "<answer>A</answer>",
    "<answer>B</answer>",
    "<answer>C</answer>",
    "<answer>D</answer>",
    "<answer>E</answer>",
    "<answer>F</answer>",
    "<think>First I count the balls: one, two, three. Then I check the colours.</think>",
    "<think>The man opens the box before he closes the window.</think> <answer>B</answer>",
    "Options: A. red B. blue C. green D. yellow E. purple F. orange",
    "Options: A. 1 B. 2 C. 3 D. 4 E. 5 F. 6",
    "Please answer with the letter of the correct option.",
    "Think step by step, then give the final answer inside answer tags.",
    "The digits 0 1 2 3 4 5 6 7 8 9 appear one after another on the screen.",
    "At 12 seconds the pink rectangle touches the edge of the frame.",
    "The clip lasts 8 seconds and contains 16 frames.",
    "A grey cat jumps onto the sofa and then lies down.",
    "The brown horse gallops across the field from right to left.",
    "Two children throw a ball back and forth in the park.",
    "The sun sets behind the mountains while the sky turns red and orange.",
    "A hand draws a circle, then a square, then a triangle on the paper.",
    "The lights flash green, yellow, and red in that order.",
    "Is the object moving toward the camera or away from it?",
    "The object is moving away from the camera, so it gets smaller.",
    "Before the car stops, it slows down near the crossing.",
    "After the bell rings, the students leave the classroom.",
    "The spinning wheel turns counterclockwise at a constant speed.",
    "Which event happens first: the glass breaks or the cat jumps?",
    "The glass breaks first, and the cat jumps afterwards.",
    "The video is played in reverse, so the water flows back into the bottle.",
    "What is the person doing in the middle of the video?",
    "The person is cutting vegetables on a white board.",
    "A tall man in a blue shirt waves his hand twice.",
    "The number of red blocks increases from two to five.",
    "Each frame shows one more dot than the previous frame.",
    "The large circle is above the small square.",
    "The small square is below and to the left of the large circle.",
    "Both shapes move together, but the star moves faster.",
    "Neither the cube nor the sphere changes colour.",
    "The ball falls because gravity pulls it down.",
    "Why does the boat move? Because the wind pushes the sail.",
    "Therefore, the correct answer is D.",
    "So the final answer is A.",
    "The scene changes from a kitchen to a garden.",
    "Inside the room, a lamp is turned off and then on again.",
    "Outside, rain falls on the street and people open umbrellas.",
    "The bird flies up, circles once, and lands on the branch.",
    "The train enters the tunnel from the left and exits on the right.",
    "Three frogs jump into the pond one by one.",
    "The camera zooms in on the face of the clock.",
    "The clock shows ten minutes past three.",
    "The hands of the clock move forward by one hour.",
    "A white arrow points up, then down, then left, then right.",
    "The video begins with a title and ends with a black screen.",
    "Look at the frames carefully and describe the motion.",
    "The motion is smooth and continuous, without any jumps.",
    "Suddenly the ball stops and changes direction.",
    "The yellow line gets longer in each frame.",
    "The purple shape is a pentagon with five sides.",
    "A hexagon has six sides and a square has four sides.",
    "The triangle has three corners and three sides.",
    "The ellipse is stretched horizontally across the frame.",
    "Compare the first frame and the last frame of the clip.",
    "In the first frame the cup is full; in the last frame it is empty.",
    "The difference between the two frames is the position of the key.",
    "The key moves from the table to the drawer.",
    "Someone closes the drawer after putting the key inside.",
    "Where is the key at the end of the video?",
    "The key is inside the drawer at the end of the video.",
    "How long does the red light stay on? About 4 seconds.",
    "The speed of the car doubles between frame 2 and frame 6.",
    "Is the statement true or false? The statement is false.",
    "Yes, the dog catches the frisbee. No, the cat does not move.",
    "The correct order of events is: wake up, brush teeth, eat breakfast.",
    "Sort the shapes by size from smallest to largest.",
    "The smallest shape is the dot and the largest is the rectangle.",
    "A man and a woman shake hands, then sit down at the table.",
    "The audience claps when the dancer finishes the performance.",
    "Colours in the video: red, green, blue, black, white, grey, pink, brown.",
    "Shapes in the video: circle, square, triangle, star, heart, diamond, cross.",
    "Motions in the video: left, right, up, down, forward, backward, around.",
    "Numbers: zero, one, two, three, four, five, six, seven, eight, nine, ten.",
    "Letters: A, B, C, D, E, F.",
    "Question: What happens after the blue ball hits the wall?",
    "Answer: It bounces back toward the center of the frame.",
    "The reasoning is simple: the shadow moves as the sun moves.",
    "Although the picture is blurry, the shape is clearly a circle.",
    "Since the door is open at the start, it must close later.",
    "Meanwhile, a second person enters from the background.",
    "Finally, everyone leaves and the room is empty.",
    "Describe the video in one sentence.",
    "Summarize what happens between 3 and 7 seconds.",
    "The robot arm lifts the green block and stacks it on the red block.",
    "The tower of blocks falls over when the table shakes.",
    "A car turns right at the corner and parks next to the tree.",
    "The water level in the glass rises steadily.",
    "Snow covers the ground while a deer walks slowly through the forest.",
    "The screen splits into four parts, each with a different colour.",
    "The player kicks the ball into the goal in the last second.",
    "The pattern repeats every two frames: on, off, on, off.",
    "Hello, how are you? I am fine, thank you.",
    "Let me think about this. The video is short, so I will watch every frame.",
]

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


def _check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
    return family


def build_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 512
) -> PreTrainedTokenizerFast:
    """Train a tiny Qwen2-style byte-level BPE tokenizer, so nothing has to be downloaded.

    It is a real ``Qwen2Tokenizer`` (the class every Qwen-VL processor is paired with on the Hub),
    with Qwen2's normaliser and pre-tokeniser, so tokenisation behaves like the real one, only
    with a vocabulary of ``vocab_size`` BPE pieces instead of ~151k. Training is deterministic.

    The Qwen control tokens (``SPECIAL_TOKENS``) get the ids right after the BPE pieces, in the
    real vocabulary's order, as single added special tokens; ``ANSWER_TOKENS`` follow as added
    non-special tokens. ``eos`` is ``<|im_end|>`` (what chat generation stops on) and ``pad`` is
    ``<|endoftext|>``, as in the real Qwen-VL instruct tokenizers; there is no BOS token.
    """
    texts = list(CORPUS if corpus is None else corpus)
    if not texts:
        raise ValueError("corpus must contain at least one text")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size <= len(alphabet):
        raise ValueError(
            f"vocab_size must exceed the {len(alphabet)}-symbol byte alphabet, got {vocab_size}"
        )

    trainer_model = Tokenizer(BPE())
    trainer_model.normalizer = normalizers.NFC()
    trainer_model.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, initial_alphabet=alphabet, show_progress=False
    )
    trainer_model.train_from_iterator(texts, trainer=trainer)

    bpe_state = json.loads(trainer_model.to_str())["model"]
    vocab: dict[str, int] = dict(bpe_state["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in bpe_state["merges"]]
    # Reserve the control tokens' ids in the model vocabulary, so their numbering is fixed by us
    # rather than by the order in which the tokenizer base class happens to register them.
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)

    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        model_max_length=32768,
    )
    tokenizer.add_tokens(list(ANSWER_TOKENS), special_tokens=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


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
    head_dim = hidden_size // num_heads
    text_config: dict[str, Any] = dict(
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
            "mrope_section": _mrope_section(family, head_dim),
        },
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
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
        text_config.update(head_dim=head_dim)
        text_config["rope_parameters"]["mrope_interleaved"] = True
        vision_config.update(
            hidden_size=vision_hidden_size,
            intermediate_size=vision_intermediate_size,
            out_hidden_size=hidden_size,
            # Learned positions on a 16x16 grid (256 px at patch 16), bilinearly interpolated to
            # other grids by the model, as the real 48x48 table is.
            num_position_embeddings=16 * 16,
            deepstack_visual_indexes=_deepstack_indexes(vision_depth, num_layers),
        )

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
