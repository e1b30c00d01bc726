"""The synthetic video world: coloured shapes on a black canvas, whose every fact is known.

Why a synthetic world. Video-KTR claims that the tokens its visual and temporal signals pick
are the ones that depend on what the video shows and on the order of its frames. On real data
nobody knows which words those are. Here every clip is generated from a ``Scene`` (which shapes,
where, when, moving which way), so every question has a known answer and every word of its
reasoning trace has a known dependency (see ``videoktr.synthetic.questions``).

The world. Frames are ``FRAME_SIZE x FRAME_SIZE`` (96 x 96) RGB on black. A scene holds one to
three filled shapes (``KINDS``: circle, square, triangle; 22-28 px) in distinct saturated colours
(``COLOURS``: red, green, blue, yellow) and lasts 8, 12 or 16 frames (``FRAME_COUNTS``: even,
because the Qwen-VL encoders take frames in pairs). Each shape has an appear frame, a disappear
frame (or stays to the end), and a motion: ``"static"`` or ``"left"``/``"right"``/``"up"``/
``"down"`` at a constant whole number of pixels per frame, staying inside the canvas for the
whole clip. Positions are whole pixels, so rendering is exact and ``reverse_frames`` is an exact
time reversal: ``render(reverse_frames(s)) == render(s)[::-1]``.

How scenes are drawn, and why each family's claim holds by construction: ``videoktr.synthetic.scenes``.

Why these sizes. The Qwen2.5-VL processor resizes a 96 px frame to 84 px, 3 x 3 merged video
tokens of 28 px; a shape of 22-28 px fills about one token and a motion of 28-40 px crosses about
one, so a small encoder can tell the kinds apart and see where a shape went (smaller worlds
that did not work: ``docs/demo.md``).

Every sampler's distribution is invariant under ``reverse_frames``, so for a temporal question
the reversed clip (same frames, opposite order) is an equally likely scene with another answer:
no function of an unordered set of frames beats chance on it. Events (appearing, disappearing)
are at least ``MIN_EVENT_GAP`` = 2 frames apart and a moving shape covers 28 to 40 pixels over
the clip (``MIN_TRAVEL``, ``MAX_TRAVEL``), so both survive keeping every second frame
(``decode_video`` at 2 fps of a 4 fps clip). Shapes never overlap (``SEPARATION`` pixels apart
in every frame where both are visible), so every shape is fully visible whenever it is present.

All sampling goes through a ``numpy.random.Generator``: the same generator state gives the same
scene.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

__all__ = [
    "COLOURS",
    "DIRECTIONS",
    "FRAME_COUNTS",
    "FRAME_SIZE",
    "KINDS",
    "MAX_TRAVEL",
    "MIN_EVENT_GAP",
    "MIN_TRAVEL",
    "MOTIONS",
    "MOTION_STEP",
    "SEPARATION",
    "SIZE_RANGE",
    "Scene",
    "Shape",
    "opposite_direction",
    "render",
    "reverse_frames",
    "shape_mask",
    "shapes_overlap",
]

FRAME_SIZE = 96
FRAME_COUNTS = (8, 12, 16)
# Saturated, far apart in RGB (and in YUV, so that chroma subsampling cannot confuse them).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 215, 40),
}
KINDS = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
MOTIONS = ("static", *DIRECTIONS)
SIZE_RANGE = (22, 28)  # inclusive, pixels (side of the bounding box)
MIN_EVENT_GAP = 2  # frames between consecutive appear/disappear events
MIN_TRAVEL = 28  # pixels a moving shape covers over the clip, at least ...
MAX_TRAVEL = 40  # ... and at most (so that paths leave room for the other shapes)
SEPARATION = 2  # pixels between the bounding boxes of two visible shapes

#: pixels a shape moves per frame, per motion (x, y)
MOTION_STEP = {"static": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def opposite_direction(direction: str) -> str:
    """``"left"`` <-> ``"right"``, ``"up"`` <-> ``"down"``."""
    if direction not in _OPPOSITE:
        raise ValueError(
            f"unknown direction {direction!r}; expected one of {', '.join(DIRECTIONS)}"
        )
    return _OPPOSITE[direction]


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Shape:
    """One filled shape and its whole life in the clip.

    Attributes:
        colour: a key of ``COLOURS``.
        kind: one of ``KINDS``.
        size: side of the square bounding box, in pixels.
        x, y: top-left corner of the bounding box at frame 0 (for a shape that appears later,
            where it would have been: positions are a linear function of the frame index).
        appear: first frame in which the shape is visible.
        disappear: first frame in which it is gone again; ``None``: it stays to the end.
        motion: ``"static"`` or a direction of ``DIRECTIONS`` (``"up"`` is towards row 0).
        speed: pixels per frame (0 for a static shape, >= 1 for a moving one).
    """

    colour: str
    kind: str
    size: int
    x: int
    y: int
    appear: int = 0
    disappear: int | None = None
    motion: str = "static"
    speed: int = 0

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(
                f"unknown colour {self.colour!r}; expected one of {', '.join(COLOURS)}"
            )
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.motion not in MOTIONS:
            raise ValueError(
                f"unknown motion {self.motion!r}; expected one of {', '.join(MOTIONS)}"
            )
        for name in ("size", "x", "y", "appear", "speed"):
            if not _is_int(getattr(self, name)):
                raise ValueError(f"shape {name} must be an int, got {getattr(self, name)!r}")
            object.__setattr__(self, name, int(getattr(self, name)))  # numpy ints -> JSON-able
        if self.size < 1:
            raise ValueError(f"shape size must be >= 1, got {self.size}")
        if self.appear < 0:
            raise ValueError(f"appear must be >= 0, got {self.appear}")
        if self.disappear is not None and (
            not _is_int(self.disappear) or self.disappear <= self.appear
        ):
            raise ValueError(
                f"disappear must be None or an int > appear ({self.appear}), got {self.disappear!r}"
            )
        if self.disappear is not None:
            object.__setattr__(self, "disappear", int(self.disappear))
        if (self.motion == "static") != (self.speed == 0) or self.speed < 0:
            raise ValueError(
                f"a static shape has speed 0 and a moving one speed >= 1; got motion "
                f"{self.motion!r} with speed {self.speed}"
            )

    @property
    def description(self) -> str:
        """``"red circle"``: how questions and traces name the shape."""
        return f"{self.colour} {self.kind}"

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLOURS[self.colour]

    def position(self, frame: int) -> tuple[int, int]:
        """Top-left corner ``(x, y)`` of the bounding box in ``frame``."""
        dx, dy = MOTION_STEP[self.motion]
        return self.x + dx * self.speed * frame, self.y + dy * self.speed * frame

    def visible(self, frame: int, num_frames: int) -> bool:
        end = num_frames if self.disappear is None else self.disappear
        return self.appear <= frame < end


@dataclass(frozen=True)
class Scene:
    """A clip: ``num_frames`` frames of ``width x height`` pixels and the shapes in it.

    Validated on construction: known colours, kinds and motions, events inside the clip, and
    every shape inside the canvas in every frame. Overlap is allowed here (shapes are drawn in
    order, later on top); the samplers never produce it (see ``shapes_overlap``).
    """

    num_frames: int
    shapes: tuple[Shape, ...]
    width: int = FRAME_SIZE
    height: int = FRAME_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", tuple(self.shapes))
        for name in ("num_frames", "width", "height"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"scene {name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        for index, shape in enumerate(self.shapes):
            if not isinstance(shape, Shape):
                raise ValueError(  # noqa: TRY004 - the package reports bad arguments as ValueError
                    f"scene shape {index} must be a Shape, got {type(shape).__name__}"
                )
            if shape.appear >= self.num_frames:
                raise ValueError(
                    f"shape {index} ({shape.description}) appears at frame {shape.appear}, "
                    f"after the last frame {self.num_frames - 1}"
                )
            if shape.disappear is not None and shape.disappear > self.num_frames:
                raise ValueError(
                    f"shape {index} ({shape.description}) disappears at frame {shape.disappear}, "
                    f"past the end ({self.num_frames}); use None for a shape that stays"
                )
            for frame in (0, self.num_frames - 1):  # positions are linear in the frame index
                x, y = shape.position(frame)
                if x < 0 or y < 0 or x + shape.size > self.width or y + shape.size > self.height:
                    raise ValueError(
                        f"shape {index} ({shape.description}) leaves the {self.width}x{self.height}"
                        f" canvas: its {shape.size}px box is at ({x}, {y}) in frame {frame}"
                    )

    def visible_shapes(self, frame: int) -> list[int]:
        """Indices of the shapes visible in ``frame``."""
        return [i for i, shape in enumerate(self.shapes) if shape.visible(frame, self.num_frames)]

    def with_shape(self, index: int, **changes: Any) -> Scene:
        """A copy with ``shapes[index]`` changed, e.g. ``scene.with_shape(0, colour="blue")``."""
        shapes = list(self.shapes)
        shapes[index] = replace(shapes[index], **changes)
        return replace(self, shapes=tuple(shapes))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (each shape also carries its ``rgb``, for people reading it)."""
        return {
            "num_frames": self.num_frames,
            "width": self.width,
            "height": self.height,
            "shapes": [{**asdict(shape), "rgb": list(shape.rgb)} for shape in self.shapes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        """Inverse of ``to_dict`` (``rgb`` is ignored: colours are looked up by name)."""
        shapes = tuple(
            Shape(**{k: v for k, v in shape.items() if k != "rgb"}) for shape in data["shapes"]
        )
        return cls(
            num_frames=data["num_frames"],
            shapes=shapes,
            width=data.get("width", FRAME_SIZE),
            height=data.get("height", FRAME_SIZE),
        )


# ----------------------------------------------------------------------------- rendering


def shape_mask(kind: str, size: int) -> np.ndarray:
    """Boolean ``[size, size]`` mask of a filled shape in its bounding box.

    circle: pixel centres within ``size / 2`` of the box centre; square: the whole box;
    triangle: pointing up, apex at the top centre, base along the bottom row.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    centres = np.arange(size) + 0.5
    rows, cols = np.meshgrid(centres, centres, indexing="ij")
    half = size / 2
    if kind == "circle":
        return (rows - half) ** 2 + (cols - half) ** 2 <= half**2
    if kind == "square":
        return np.ones((size, size), dtype=bool)
    return np.abs(cols - half) <= (rows + 0.5) / 2  # triangle: 2 px wide at the apex, full base


def render(scene: Scene) -> np.ndarray:
    """The clip as uint8 RGB frames ``[T, H, W, 3]``: black, with each visible shape filled."""
    frames = np.zeros((scene.num_frames, scene.height, scene.width, 3), dtype=np.uint8)
    for shape in scene.shapes:
        mask = shape_mask(shape.kind, shape.size)
        colour = np.array(shape.rgb, dtype=np.uint8)
        for frame in range(scene.num_frames):
            if shape.visible(frame, scene.num_frames):
                x, y = shape.position(frame)
                frames[frame, y : y + shape.size, x : x + shape.size][mask] = colour
    return frames


def reverse_frames(scene: Scene) -> Scene:
    """The scene played backwards: ``render(reverse_frames(s))`` equals ``render(s)[::-1]``.

    Appearances become disappearances and vice versa, every motion turns to the opposite
    direction and starts where it used to end. Nothing seen in any single frame changes.
    """
    last = scene.num_frames - 1
    shapes = []
    for shape in scene.shapes:
        end_x, end_y = shape.position(last)
        shapes.append(
            replace(
                shape,
                x=end_x,
                y=end_y,
                appear=0 if shape.disappear is None else scene.num_frames - shape.disappear,
                disappear=None if shape.appear == 0 else scene.num_frames - shape.appear,
                motion="static" if shape.motion == "static" else _OPPOSITE[shape.motion],
            )
        )
    return replace(scene, shapes=tuple(shapes))


def shapes_overlap(scene: Scene, separation: int = SEPARATION) -> bool:
    """Whether two shapes' bounding boxes come closer than ``separation`` pixels in a frame
    in which both are visible."""
    for frame in range(scene.num_frames):
        visible = scene.visible_shapes(frame)
        boxes = []
        for index in visible:
            shape = scene.shapes[index]
            x, y = shape.position(frame)
            boxes.append((x, y, shape.size))
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                (x1, y1, s1), (x2, y2, s2) = boxes[i], boxes[j]
                apart = (
                    x1 + s1 + separation <= x2
                    or x2 + s2 + separation <= x1
                    or y1 + s1 + separation <= y2
                    or y2 + s2 + separation <= y1
                )
                if not apart:
                    return True
    return False
