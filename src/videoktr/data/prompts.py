"""The think/answer prompt and the processor call that turns a sample into model inputs.

GRPO rewards are computed from the completion's ``<answer>...</answer>`` span (accuracy) and from
its overall ``<think>...</think><answer>...</answer>`` shape (format), and Video-KTR's token
attribution looks for the same tags. So every prompt asks for reasoning inside ``<think> </think>``
and the final answer inside ``<answer> </answer>``, and tells the model what the answer must look
like for the question's type, so the reward parser sees a letter, a number or text as expected.
The wording is our own.

``build_prompt_inputs`` is the single place where decoded media meets a Qwen processor, because
that is where timing and pixel budgets are easy to get silently wrong:

* the frames are passed with ``DecodedVideo.metadata()`` (source fps, source frame count, source
  frame indices), which gives Qwen2.5-VL ``second_per_grid_ts = 2 / effective fps`` and Qwen3-VL
  its true ``<t seconds>`` timestamps (see ``DecodedVideo.metadata``);
* ``do_sample_frames=False`` is always passed: the frames are already sampled, and the stock
  Qwen3-VL processor would otherwise resample them;
* ``max_pixels`` is one budget meaning the same thing for every family, the total pixel count of
  the clip (or image) after resizing, translated to each processor's ``size`` convention (see
  ``pixel_budget_size``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from .dataset import PROBLEM_TYPES, Sample
from .video import DecodedVideo

__all__ = [
    "ANSWER_FORMAT_INSTRUCTIONS",
    "REASONING_INSTRUCTION",
    "build_batch_inputs",
    "build_messages",
    "build_prompt_inputs",
    "build_prompt_text",
    "format_options",
    "pixel_budget_size",
]

REASONING_INSTRUCTION = (
    "Study the {media} closely before you answer. Lay out your reasoning inside <think> </think>, "
    "and afterwards put your final answer, and nothing else, inside <answer> </answer>."
)

ANSWER_FORMAT_INSTRUCTIONS = {
    "multiple choice": "Your final answer must be the letter of one option only, such as C.",
    "numerical": (
        "Your final answer must be a single number written with digits (a decimal point is fine),"
        " without units."
    ),
    "OCR": (
        "Your final answer must be the text exactly as it is written, copied character by character."
    ),
    "free-form": "Your final answer should be a brief reply in your own words.",
    "regression": "Your final answer must be your best estimate as a single number, without units.",
}
assert set(ANSWER_FORMAT_INSTRUCTIONS) == set(PROBLEM_TYPES)

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LABELLED = re.compile(r"^\s*([A-Z])\s*[.):]\s*")


def format_options(options: Sequence[str]) -> list[str]:
    """One display line per option, labelled ``A.``, ``B.``, ...

    Video-R1 options usually carry their labels already (``"A. red"``); if every option starts
    with its own letter in order (``A.``/``A)``/``A:``), the options are kept as written (stripped);
    otherwise each gets ``"<letter>. "`` prepended.
    """
    options = [option.strip() for option in options]
    already_labelled = all(
        (match := _LABELLED.match(option)) is not None and match.group(1) == _LETTERS[i]
        for i, option in enumerate(options)
    )
    if already_labelled:
        return options
    return [f"{_LETTERS[i]}. {option}" for i, option in enumerate(options)]


def build_prompt_text(sample: Sample) -> str:
    """The user turn's text::

    <problem>
    Options:            (multiple choice only, then one option per line)
    A. ...
    B. ...
    <blank line>
    <reasoning instruction naming the video or image> <answer-format instruction for the type>
    """
    if sample.problem_type not in ANSWER_FORMAT_INSTRUCTIONS:
        raise ValueError(
            f"{sample.location}: unknown problem_type {sample.problem_type!r}; expected one of "
            + ", ".join(repr(t) for t in PROBLEM_TYPES)
        )
    lines = [sample.problem.strip()]
    if sample.problem_type == "multiple choice":
        lines.append("Options:")
        lines.extend(format_options(sample.options))
    instruction = REASONING_INSTRUCTION.format(media=sample.data_type)
    lines.append("")
    lines.append(f"{instruction} {ANSWER_FORMAT_INSTRUCTIONS[sample.problem_type]}")
    return "\n".join(lines)


def build_messages(sample: Sample) -> list[dict[str, Any]]:
    """One user turn for the Qwen chat template: the media placeholder, then the prompt text.

    ``[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": ...}]}]``
    (``{"type": "image"}`` for an image row). The placeholder carries no media: the frames go to
    the processor separately (``build_prompt_inputs``).
    """
    if sample.data_type not in ("video", "image"):
        raise ValueError(f"{sample.location}: unknown data_type {sample.data_type!r}")
    return [
        {
            "role": "user",
            "content": [
                {"type": sample.data_type},
                {"type": "text", "text": build_prompt_text(sample)},
            ],
        }
    ]


def _budgets_whole_clip(video_processor: object) -> bool:
    """Whether ``size`` bounds the whole clip (Qwen3-VL's video processor and its subclasses)."""
    return any(cls.__name__ == "Qwen3VLVideoProcessor" for cls in type(video_processor).__mro__)


def _current_min_pixels(processor_part: object) -> int | None:
    size = getattr(processor_part, "size", None)
    if size is None:
        return None
    value = (
        size.get("shortest_edge")
        if isinstance(size, dict)
        else getattr(size, "shortest_edge", None)
    )
    return int(value) if value else None


def pixel_budget_size(
    processor_part: object, max_pixels: int, num_frames: int | None
) -> dict[str, int]:
    """The ``size`` kwarg that caps ``processor_part``'s output at ``max_pixels`` pixels in total.

    ``max_pixels`` is the total pixel count of the resized media. How it maps (transformers 5.24):

    * Qwen2-VL / Qwen2.5-VL video (``Qwen2VLVideoProcessor``) and every image processor:
      ``size["longest_edge"]`` bounds the pixels of *one frame*, so a clip of ``T`` frames gets
      ``longest_edge = max_pixels // T_even`` where ``T_even`` is ``T`` rounded up to even (an odd
      clip is padded with a copy of its last frame before encoding, and that copy costs pixels too);
      an image (``num_frames=None``) gets ``longest_edge = max_pixels``.
    * Qwen3-VL video (``Qwen3VLVideoProcessor``): ``size["longest_edge"]`` bounds the pixels of
      the *whole clip* (frames x height x width), so ``longest_edge = max_pixels``.

    ``shortest_edge`` (the processors' lower bound) is kept from the processor but lowered, if
    needed, to ``floor(per_frame / 1.05)`` with ``per_frame = max_pixels // T_even`` (``max_pixels``
    for an image): with ``cap_pixels_per_frame=True`` both video processors floor each frame at
    ``1.05 * shortest_edge`` pixels, which must not lift the clip over the budget. Resizing then
    snaps each side to the patch grid (a multiple of ``patch_size * merge_size``), flooring when
    rounding would exceed the bound, so the budget holds unless it is below one grid cell per
    frame. One caveat for odd frame counts on Qwen3-VL: it checks the bound with the count rounded
    by Python's ``round`` (5 frames count as 4) but encodes the padded count (6), so such a clip
    can exceed the budget by a frame; ``sample_frame_indices`` gives even counts whenever it can.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    if num_frames is not None and (
        isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1
    ):
        raise ValueError(f"num_frames must be a positive int or None, got {num_frames!r}")
    frames_even = 1 if num_frames is None else num_frames + num_frames % 2
    per_frame = max(1, max_pixels // frames_even)
    whole_clip = num_frames is not None and _budgets_whole_clip(processor_part)
    longest = max_pixels if whole_clip else per_frame
    floor_limit = max(1, int(per_frame / 1.05))
    current_min = _current_min_pixels(processor_part)
    shortest = floor_limit if current_min is None else min(current_min, floor_limit)
    return {"shortest_edge": shortest, "longest_edge": longest}


def _clip(video: DecodedVideo) -> tuple[torch.Tensor, dict[str, Any]]:
    """A clip's frames and timing metadata as the processor takes them. A one-frame clip is given
    a copy of its frame (Qwen encodes frames in pairs and Qwen3-VL rejects a single frame); the
    processors pad any other odd frame count the same way themselves."""
    frames, metadata = video.frames, video.metadata()
    if frames.shape[0] == 1:
        frames = frames.repeat(2, 1, 1, 1)
        metadata["frames_indices"] = metadata["frames_indices"] * 2
    return frames, metadata


def build_prompt_inputs(
    processor: Any,
    sample: Sample,
    media: DecodedVideo | torch.Tensor,
    max_pixels: int | None = None,
) -> Any:
    """Model inputs (a ``BatchFeature`` of batch size 1, PyTorch tensors) for one sample.

    Applies the processor's chat template to ``build_messages(sample)`` (``tokenize=False``,
    ``add_generation_prompt=True``), then calls the processor with the text and:

    * a video: ``videos=[media.frames]``, ``video_metadata=[media.metadata()]`` and
      ``videos_kwargs={"do_sample_frames": False}`` (a one-frame clip doubled, see ``_clip``);
    * an image: ``images=[media]`` (uint8 ``[C, H, W]``).

    ``max_pixels`` caps the total resized pixels of the media; ``None`` keeps the processor's own
    bounds. See ``pixel_budget_size`` for how it becomes ``size`` per family.
    """
    text = processor.apply_chat_template(
        build_messages(sample), tokenize=False, add_generation_prompt=True
    )
    if sample.data_type == "video":
        if not isinstance(media, DecodedVideo):
            raise TypeError(
                f"{sample.location}: a video sample needs a DecodedVideo, got {type(media).__name__}"
            )
        frames, metadata = _clip(media)
        videos_kwargs: dict[str, Any] = {"do_sample_frames": False}
        if max_pixels is not None:
            videos_kwargs["size"] = pixel_budget_size(
                processor.video_processor, max_pixels, int(frames.shape[0])
            )
        return processor(
            text=[text],
            videos=[frames],
            video_metadata=[metadata],
            videos_kwargs=videos_kwargs,
            return_tensors="pt",
        )
    if not (isinstance(media, torch.Tensor) and media.dim() == 3):
        raise TypeError(
            f"{sample.location}: an image sample needs a [C, H, W] tensor, got "
            f"{type(media).__name__}{tuple(media.shape) if isinstance(media, torch.Tensor) else ''}"
        )
    images_kwargs: dict[str, Any] = {}
    if max_pixels is not None:
        images_kwargs["size"] = pixel_budget_size(processor.image_processor, max_pixels, None)
    return processor(text=[text], images=[media], images_kwargs=images_kwargs, return_tensors="pt")


@contextmanager
def _padding_side(tokenizer: Any, side: str | None) -> Iterator[None]:
    previous = tokenizer.padding_side
    if side is not None:
        tokenizer.padding_side = side
    try:
        yield
    finally:
        tokenizer.padding_side = previous


def build_batch_inputs(
    processor: Any,
    prompts: Sequence[str],
    videos: Sequence[DecodedVideo],
    max_pixels: int | None = None,
    left_pad: bool = False,
) -> Any:
    """Model inputs for a batch of video questions (evaluation): ``prompts[i]`` is the user
    turn's text after the video ``videos[i]``, as benchmarks word it (no think/answer
    instruction is added). The batched form of ``build_prompt_inputs``: frames with their timing
    metadata, ``do_sample_frames=False``, a one-frame clip doubled, ``max_pixels`` the budget of
    the longest clip, and, with ``left_pad``, prompts padded on the left for batched generation.
    """
    texts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for prompt in prompts
    ]
    clips = [_clip(video) for video in videos]
    videos_kwargs: dict[str, Any] = {"do_sample_frames": False}
    if max_pixels is not None:
        longest = max(int(frames.shape[0]) for frames, _ in clips)
        videos_kwargs["size"] = pixel_budget_size(processor.video_processor, max_pixels, longest)
    with _padding_side(processor.tokenizer, "left" if left_pad else None):
        return processor(
            text=texts,
            videos=[frames for frames, _ in clips],
            video_metadata=[metadata for _, metadata in clips],
            videos_kwargs=videos_kwargs,
            padding=True,
            return_tensors="pt",
        )
