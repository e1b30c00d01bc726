"""Answering benchmark questions with a local model: the settings, the frames, the batched call.

Generation follows the official Qwen-VL evaluation settings of Video-Holmes and Video-R1
(``videoktr.defaults``: temperature 0.1, top-p 0.001, up to 1,024 new tokens);
``temperature = 0`` is greedy. Frames: ``num_frames`` frames sampled uniformly over the whole
video (``data.decode_uniform``); or, with ``fps``, frames at that rate, between
``defaults.MIN_FRAMES`` and ``num_frames``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .. import defaults
from ..data.pixels import PixelBudget
from ..data.prompts import build_batch_inputs, build_engine_questions
from ..data.video import DecodedVideo, decode_uniform, decode_video
from ..models.generation import generate_texts
from ..rollout import VLLMRolloutBackend

__all__ = ["EvalSettings", "answer_batch", "decode_clip"]


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class EvalSettings:
    """How questions are asked: frames, pixels, sampling, batch size, and how many questions
    (``limit``: the first N in file order; None asks all). Checked when built.

    Pixels (``data.pixels``): every frame gets ``video_min_pixels`` to ``video_max_pixels``
    pixels, by default 128 x 28 x 28 both, the official Video-KTR evaluation's budget (its
    ``eval_bench.py`` with its bundled qwen-vl-utils); ``max_pixels`` caps a clip's total;
    None leaves a bound to the processor."""

    num_frames: int = defaults.EVAL_NUM_FRAMES
    fps: float | None = None
    max_pixels: int | None = None
    temperature: float = defaults.EVAL_TEMPERATURE
    top_p: float = defaults.EVAL_TOP_P
    max_new_tokens: int = defaults.EVAL_MAX_NEW_TOKENS
    batch_size: int = 1
    limit: int | None = None
    video_min_pixels: int | None = defaults.VIDEO_FRAME_PIXELS
    video_max_pixels: int | None = defaults.VIDEO_FRAME_PIXELS

    def __post_init__(self) -> None:
        for name in ("num_frames", "max_new_tokens", "batch_size"):
            _positive_int(name, getattr(self, name))
        limit = self.limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
        self.pixel_budget  # noqa: B018 - validates the pixel bounds together
        fps = self.fps
        if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be None or a positive number, got {fps!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {self.temperature!r}")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")

    @property
    def pixel_budget(self) -> PixelBudget:
        return PixelBudget(self.max_pixels, self.video_min_pixels, self.video_max_pixels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decode_clip(path: str | os.PathLike, settings: EvalSettings) -> DecodedVideo:
    """The frames a question is asked about (see the module docstring)."""
    if settings.fps is None:
        return decode_uniform(path, settings.num_frames)
    return decode_video(path, fps=settings.fps, min_frames=min(defaults.MIN_FRAMES, settings.num_frames),
                        max_frames=settings.num_frames)


def answer_batch(model: Any, processor: Any, prompts: Sequence[str], videos: Sequence[DecodedVideo],
                 settings: EvalSettings) -> list[str]:
    """One generated answer per question (prompts padded on the left when batched), by ``model``,
    or by a vLLM rollout server when ``model`` is a ``rollout.VLLMRolloutBackend`` (the same
    texts, frames, timing, pixel budget and sampling settings, sent to the engine)."""
    if isinstance(model, VLLMRolloutBackend):
        questions = build_engine_questions(processor, prompts, videos, settings.pixel_budget)
        return model.generate_texts(questions, settings.max_new_tokens, settings.temperature, settings.top_p)
    inputs = build_batch_inputs(processor, prompts, videos, settings.pixel_budget, left_pad=settings.batch_size > 1)
    return generate_texts(model, processor, inputs, settings.max_new_tokens, settings.temperature, settings.top_p)
