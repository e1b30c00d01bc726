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
* the pixel budget (``data.pixels.PixelBudget``: ``max_pixels`` the media's total, per-frame
  ``video_min_pixels`` / ``video_max_pixels``, ``image_max_pixels``) means the same thing for
  every family and is translated to each processor's ``size`` convention there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from .dataset import PROBLEM_TYPES, Sample
from .pixels import PixelBudget, image_size_kwargs, video_size_kwargs
from .video import DecodedVideo

__all__ = [
    "ANSWER_FORMAT_INSTRUCTIONS",
    "REASONING_INSTRUCTION",
    "build_batch_inputs",
    "build_engine_prompt",
    "build_engine_questions",
    "build_messages",
    "build_prompt_inputs",
    "build_prompt_text",
    "format_options",
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


def _clip(video: DecodedVideo) -> tuple[torch.Tensor, dict[str, Any]]:
    """A clip's frames and timing metadata as the processor takes them. A one-frame clip is given
    a copy of its frame (Qwen encodes frames in pairs and Qwen3-VL rejects a single frame); the
    processors pad any other odd frame count the same way themselves."""
    frames, metadata = video.frames, video.metadata()
    if frames.shape[0] == 1:
        frames = frames.repeat(2, 1, 1, 1)
        metadata["frames_indices"] = metadata["frames_indices"] * 2
    return frames, metadata


def _processor_arguments(
    processor: Any, sample: Sample, media: DecodedVideo | torch.Tensor, pixels: PixelBudget | int | None
) -> tuple[str, dict[str, Any]]:
    """The chat-template text and the media arguments of the processor call for one sample,
    shared by the trainer's own call (``build_prompt_inputs``) and an engine's (``build_engine_prompt``)."""
    budget = PixelBudget.of(pixels)
    text = processor.apply_chat_template(
        build_messages(sample), tokenize=False, add_generation_prompt=True
    )
    if sample.data_type == "video":
        if not isinstance(media, DecodedVideo):
            raise TypeError(
                f"{sample.location}: a video sample needs a DecodedVideo, got {type(media).__name__}"
            )
        frames, metadata = _clip(media)
        videos_kwargs: dict[str, Any] = {
            "do_sample_frames": False,
            **video_size_kwargs(processor.video_processor, int(frames.shape[0]), budget),
        }
        return text, {"videos": [frames], "video_metadata": [metadata], "videos_kwargs": videos_kwargs}
    if not (isinstance(media, torch.Tensor) and media.dim() == 3):
        raise TypeError(
            f"{sample.location}: an image sample needs a [C, H, W] tensor, got "
            f"{type(media).__name__}{tuple(media.shape) if isinstance(media, torch.Tensor) else ''}"
        )
    return text, {"images": [media], "images_kwargs": image_size_kwargs(processor.image_processor, budget)}


def build_prompt_inputs(
    processor: Any,
    sample: Sample,
    media: DecodedVideo | torch.Tensor,
    pixels: PixelBudget | int | None = None,
) -> Any:
    """Model inputs (a ``BatchFeature`` of batch size 1, PyTorch tensors) for one sample.

    Applies the processor's chat template to ``build_messages(sample)`` (``tokenize=False``,
    ``add_generation_prompt=True``), then calls the processor with the text and:

    * a video: ``videos=[media.frames]``, ``video_metadata=[media.metadata()]`` and
      ``videos_kwargs={"do_sample_frames": False}`` (a one-frame clip doubled, see ``_clip``);
    * an image: ``images=[media]`` (uint8 ``[C, H, W]``).

    ``pixels`` is the pixel budget (``data.pixels.PixelBudget``, or a bare int: ``max_pixels``,
    the total resized pixels of the media); ``None`` keeps the processor's own bounds.
    """
    text, media_arguments = _processor_arguments(processor, sample, media, pixels)
    return processor(text=[text], return_tensors="pt", **media_arguments)


def build_engine_prompt(
    processor: Any,
    sample: Sample,
    media: DecodedVideo | torch.Tensor,
    pixels: PixelBudget | int | None = None,
) -> dict[str, Any]:
    """One sample as an inference engine (vLLM) takes it, built from the same text, frames,
    timing and pixel budget as ``build_prompt_inputs``, so the engine's processor produces the
    inputs the trainer scores.

    Returns ``{"prompt_token_ids", "media_type", "media", "metadata", "processor_kwargs"}``:
    the chat template's tokens with one placeholder per media item (the engine expands it, as
    the processor does), the frames as uint8 ``[T, H, W, C]`` (an image ``[H, W, C]``) in a
    numpy array, the video's timing metadata (``DecodedVideo.metadata``; None for an image), and
    the processor keyword arguments (``do_sample_frames=False`` and the size bounds).
    """
    text, media_arguments = _processor_arguments(processor, sample, media, pixels)
    if sample.data_type == "video":
        return _engine_prompt(processor, text, "video", media_arguments["videos"][0],
                              media_arguments["video_metadata"][0], media_arguments["videos_kwargs"])
    return _engine_prompt(processor, text, "image", media_arguments["images"][0], None, media_arguments["images_kwargs"])


def _engine_prompt(processor: Any, text: str, media_type: str, media: torch.Tensor, metadata: dict[str, Any] | None,
                   processor_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The engine's form of one prompt: the text's tokens (placeholders unexpanded) and the
    media channels-last as numpy (``[T, C, H, W]`` -> ``[T, H, W, C]``, ``[C, H, W]`` -> ``[H, W, C]``)."""
    channels_last = (0, 2, 3, 1) if media.dim() == 4 else (1, 2, 0)
    return {
        "prompt_token_ids": list(processor.tokenizer(text, add_special_tokens=False)["input_ids"]),
        "media_type": media_type,
        "media": media.permute(*channels_last).contiguous().numpy(),
        "metadata": metadata,
        "processor_kwargs": dict(processor_kwargs),
    }


@contextmanager
def _padding_side(tokenizer: Any, side: str | None) -> Iterator[None]:
    previous = tokenizer.padding_side
    if side is not None:
        tokenizer.padding_side = side
    try:
        yield
    finally:
        tokenizer.padding_side = previous


def _question_arguments(
    processor: Any, prompts: Sequence[str], videos: Sequence[DecodedVideo], pixels: PixelBudget | int | None
) -> tuple[list[str], list[tuple[torch.Tensor, dict[str, Any]]], dict[str, Any]]:
    """The texts, clips and video keyword arguments of a batch of evaluation questions, shared by
    the processor call (``build_batch_inputs``) and an engine's prompts (``build_engine_questions``)."""
    texts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for prompt in prompts
    ]
    clips = [_clip(video) for video in videos]
    longest = max(int(frames.shape[0]) for frames, _ in clips)
    videos_kwargs: dict[str, Any] = {
        "do_sample_frames": False,
        **video_size_kwargs(processor.video_processor, longest, PixelBudget.of(pixels)),
    }
    return texts, clips, videos_kwargs


def build_batch_inputs(
    processor: Any,
    prompts: Sequence[str],
    videos: Sequence[DecodedVideo],
    pixels: PixelBudget | int | None = None,
    left_pad: bool = False,
) -> Any:
    """Model inputs for a batch of video questions (evaluation): ``prompts[i]`` is the user
    turn's text after the video ``videos[i]``, as benchmarks word it (no think/answer
    instruction is added). The batched form of ``build_prompt_inputs``: frames with their timing
    metadata, ``do_sample_frames=False``, a one-frame clip doubled, ``pixels`` the budget of
    the longest clip, and, with ``left_pad``, prompts padded on the left for batched generation.
    """
    texts, clips, videos_kwargs = _question_arguments(processor, prompts, videos, pixels)
    with _padding_side(processor.tokenizer, "left" if left_pad else None):
        return processor(
            text=texts,
            videos=[frames for frames, _ in clips],
            video_metadata=[metadata for _, metadata in clips],
            videos_kwargs=videos_kwargs,
            padding=True,
            return_tensors="pt",
        )


def build_engine_questions(
    processor: Any,
    prompts: Sequence[str],
    videos: Sequence[DecodedVideo],
    pixels: PixelBudget | int | None = None,
) -> list[dict[str, Any]]:
    """A batch of evaluation questions as an inference engine takes them (the form of
    ``build_engine_prompt``), from the same texts, frames, timing and pixel budget as
    ``build_batch_inputs`` gives the processor."""
    texts, clips, videos_kwargs = _question_arguments(processor, prompts, videos, pixels)
    return [_engine_prompt(processor, text, "video", frames, metadata, videos_kwargs)
            for text, (frames, metadata) in zip(texts, clips)]
