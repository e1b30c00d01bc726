"""Pixel budgets: how many pixels a prompt's media keeps after resizing, in one vocabulary for
every Qwen-VL family, translated to each processor's ``size`` convention.

Three kinds of bound, each with one meaning everywhere (the trainer's configuration, the
evaluation settings, the CLI):

* ``max_pixels``: the total pixel count of the media, all frames of a clip together (or the
  image): a budget for the whole prompt's vision tokens.
* ``video_min_pixels``, ``video_max_pixels``: the pixels of *one frame*, as qwen-vl-utils names
  them (its VIDEO_MIN_PIXELS / VIDEO_MAX_PIXELS and a video message's ``min_pixels`` /
  ``max_pixels``). The official Video-KTR code sets both to 128 x 28 x 28
  (``videoktr.defaults.VIDEO_FRAME_PIXELS``), so every frame has about that many pixels, small
  videos scaled up.
* ``image_max_pixels``: the pixels of an image (the official code: 256 x 28 x 28).

Where they conflict, the per-frame minimum wins, as in qwen-vl-utils (whose frame maximum is
``max(min(VIDEO_MAX_PIXELS, total / frames * 2), int(VIDEO_MIN_PIXELS * 1.05))``); with both
per-frame bounds set, a Qwen2/Qwen2.5-VL frame is resized exactly as qwen-vl-utils'
``smart_resize`` resizes it (``tests/data/test_pixels.py`` checks this against the package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PixelBudget", "image_size_kwargs", "pixel_budget_size", "video_size_kwargs"]


def _check_positive(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")


@dataclass(frozen=True)
class PixelBudget:
    """The bounds above; None leaves a bound to the processor's own configuration."""

    max_pixels: int | None = None
    video_min_pixels: int | None = None
    video_max_pixels: int | None = None
    image_max_pixels: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_pixels", "video_min_pixels", "video_max_pixels", "image_max_pixels"):
            _check_positive(name, getattr(self, name))
        if (self.video_min_pixels is not None and self.video_max_pixels is not None
                and self.video_min_pixels > self.video_max_pixels):
            raise ValueError(f"video_min_pixels={self.video_min_pixels} is larger than "
                             f"video_max_pixels={self.video_max_pixels}")

    @classmethod
    def of(cls, budget: PixelBudget | int | None) -> PixelBudget:
        """A budget from a ``PixelBudget``, a bare ``max_pixels`` int, or None (no bound)."""
        if isinstance(budget, PixelBudget):
            return budget
        return cls(max_pixels=budget)


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


def _current_max_pixels(processor_part: object) -> int | None:
    size = getattr(processor_part, "size", None)
    value = size.get("longest_edge") if isinstance(size, dict) else getattr(size, "longest_edge", None)
    return int(value) if value else None


def video_size_kwargs(video_processor: object, num_frames: int, budget: PixelBudget) -> dict[str, Any]:
    """The ``videos_kwargs`` entries that make ``video_processor`` honour ``budget`` for a clip
    of ``num_frames`` frames (empty: the processor's own bounds).

    Without per-frame bounds, ``max_pixels`` alone becomes ``size`` (:func:`pixel_budget_size`).
    With them, on Qwen2/Qwen2.5-VL (``size`` bounds one frame): ``size = {shortest_edge:
    video_min_pixels, longest_edge: min(video_max_pixels, max_pixels // T_even)}`` with
    ``cap_pixels_per_frame=True``, under which the processor lifts the frame maximum to
    ``int(1.05 * video_min_pixels)`` where it is lower, exactly as qwen-vl-utils does. On Qwen3-VL
    (``size`` bounds the whole clip) the same per-frame bounds, the lift included, are multiplied
    by ``T_even`` and the processor's own cap is turned off. A bound left None is the processor's
    own, per frame (a processor floor above the maximum is lowered to fit it).
    """
    if budget.video_min_pixels is None and budget.video_max_pixels is None:
        if budget.max_pixels is None:
            return {}
        return {"size": pixel_budget_size(video_processor, budget.max_pixels, num_frames)}
    frames_even = num_frames + num_frames % 2
    whole_clip = _budgets_whole_clip(video_processor)
    per_frame = frames_even if whole_clip else 1
    own_max = _current_max_pixels(video_processor)
    high = budget.video_max_pixels or (own_max // per_frame if own_max else budget.video_min_pixels)
    if budget.max_pixels is not None:
        high = min(high, max(1, budget.max_pixels // frames_even))
    if budget.video_min_pixels is not None:
        low = budget.video_min_pixels  # the floor wins over every maximum, as in qwen-vl-utils
    else:  # the processor's own floor, lowered so that its 1.05 lift stays within the maximum
        own_min = _current_min_pixels(video_processor)
        low = max(1, min(own_min // per_frame if own_min else 1, int(high / 1.05)))
    if not whole_clip:
        return {"size": {"shortest_edge": low, "longest_edge": max(high, low)}, "cap_pixels_per_frame": True}
    high = max(high, int(low * 1.05))
    return {"size": {"shortest_edge": low * frames_even, "longest_edge": high * frames_even},
            "cap_pixels_per_frame": False}


def image_size_kwargs(image_processor: object, budget: PixelBudget) -> dict[str, Any]:
    """The ``images_kwargs`` entries for one image: at most ``min(max_pixels, image_max_pixels)``
    pixels (:func:`pixel_budget_size`); empty when neither is set."""
    bounds = [value for value in (budget.max_pixels, budget.image_max_pixels) if value is not None]
    if not bounds:
        return {}
    return {"size": pixel_budget_size(image_processor, min(bounds), None)}
