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

Scene samplers. Each question family draws scenes from one sampler, chosen so that the family's
claim holds by construction:

* ``sample_still_scene``: every shape is visible in every frame (static or moving), so any
  single frame answers a question about colours, kinds or counts.
* ``sample_queue_scene``: static shapes that appear one after another and then disappear in
  the same order (first in, first out), with a stretch of frames in which all are visible. No
  single frame tells the order, and, more strictly, neither does the *set* of frames: the time
  reversal of a queue is a queue with the opposite order and exactly the same frames. (Scenes in
  which the shapes appear one by one and then all stay would leak the order to a model that
  sees frames shuffled: the shape visible in more frames appeared first.)
* ``sample_mover_scene``: one shape moves the whole clip; others sit still, some appearing late
  or leaving early (the sampler is symmetric under time reversal).
* ``sample_opposite_movers_scene``: two shapes moving in opposite directions along one axis,
  and possibly a third, still one.

Why these sizes. The Qwen2.5-VL processor resizes a 96 px frame to 84 px, 3 x 3 merged video
tokens of 28 px; a shape of 22-28 px fills about one token and a motion of 28-40 px crosses about
one, so a small encoder can tell the kinds apart and see where a shape went. On 64 px frames
with 14-20 px shapes that moved 12-32 px (2 x 2 tokens), 600 steps of the demo's encoder
pre-training named the (colour, kind) pairs in its tokens with recall 0.09 (here 0.16, and 0.37
after 1,200 steps), and the warmed-up policy's shape and direction words stayed at chance
(teacher-forced NLL 1.1 and 1.4 nats: uniform over 3 kinds and 4 directions).

Every sampler's distribution is invariant under ``reverse_frames``, so for a temporal question
the reversed clip (same frames, opposite order) is an equally likely scene with another answer:
no function of an unordered set of frames beats chance on it. Events (appearing, disappearing)
are at least ``MIN_EVENT_GAP`` = 2 frames apart and a moving shape covers 28 to 40 pixels over
the clip (``MIN_TRAVEL``, ``MAX_TRAVEL``), so both survive keeping every second frame
(``decode_video`` at 2 fps of a 4 fps clip). Shapes never overlap (``SEPARATION`` pixels apart in every frame where both are visible), so every
shape is fully visible whenever it is present.

All sampling goes through a ``numpy.random.Generator``: the same generator state gives the same
scene.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
    "SEPARATION",
    "SIZE_RANGE",
    "Scene",
    "Shape",
    "opposite_direction",
    "render",
    "reverse_frames",
    "sample_mover_scene",
    "sample_num_frames",
    "sample_opposite_movers_scene",
    "sample_queue_scene",
    "sample_still_scene",
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

_STEP = {"static": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
_PLACEMENT_TRIES = 100
_PLAN_TRIES = 100


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
        dx, dy = _STEP[self.motion]
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


# ----------------------------------------------------------------------------- sampling


@dataclass
class _Plan:
    """What a sampler decided for one shape before its position is drawn."""

    colour: str
    kind: str
    size: int
    appear: int = 0
    disappear: int | None = None
    motion: str = "static"
    speed: int = 0


def sample_num_frames(rng: np.random.Generator, choices: Sequence[int] = FRAME_COUNTS) -> int:
    return int(rng.choice(np.asarray(choices)))


def _looks(rng: np.random.Generator, count: int) -> list[tuple[str, str, int]]:
    """``count`` shapes with distinct colours and distinct kinds, each with a size."""
    if not 1 <= count <= len(KINDS):
        raise ValueError(f"a scene holds 1 to {len(KINDS)} shapes, got {count}")
    colours = rng.permutation(list(COLOURS))[:count]
    kinds = rng.permutation(list(KINDS))[:count]
    sizes = rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1, size=count)
    return [(str(c), str(k), int(s)) for c, k, s in zip(colours, kinds, sizes, strict=True)]


def _speed(rng: np.random.Generator, size: int, num_frames: int, canvas: int) -> int:
    """A whole-pixel speed covering ``MIN_TRAVEL`` to ``MAX_TRAVEL`` px (as far as whole pixels per
    frame allow) and staying inside the canvas."""
    steps = num_frames - 1
    fastest = min(canvas - size, MAX_TRAVEL) // steps
    slowest = max(1, math.ceil(MIN_TRAVEL / steps))
    if fastest < slowest:
        raise ValueError(
            f"a {size}px shape cannot travel {MIN_TRAVEL}px in {num_frames} frames on a "
            f"{canvas}px canvas"
        )
    return int(rng.integers(slowest, fastest + 1))


def _place(rng: np.random.Generator, plans: list[_Plan], num_frames: int) -> Scene | None:
    """Draw start positions for the plans until no two shapes overlap (rejection sampling);
    ``None`` if ``_PLACEMENT_TRIES`` draws all overlap (the plans' paths leave no room).

    A moving shape's start is uniform over the positions that keep its whole path inside the
    canvas, so its end position is uniform over the same range mirrored: the distribution is
    symmetric under time reversal.
    """
    canvas = FRAME_SIZE
    for _ in range(_PLACEMENT_TRIES):
        shapes = []
        for plan in plans:
            travel = plan.speed * (num_frames - 1)
            dx, dy = _STEP[plan.motion]
            ranges = []
            for step in (dx, dy):
                low, high = 0, canvas - plan.size
                if step > 0:
                    high -= travel
                elif step < 0:
                    low += travel
                ranges.append((low, high))
            x = int(rng.integers(ranges[0][0], ranges[0][1] + 1))
            y = int(rng.integers(ranges[1][0], ranges[1][1] + 1))
            shapes.append(
                Shape(
                    colour=plan.colour,
                    kind=plan.kind,
                    size=plan.size,
                    x=x,
                    y=y,
                    appear=plan.appear,
                    disappear=plan.disappear,
                    motion=plan.motion,
                    speed=plan.speed,
                )
            )
        scene = Scene(num_frames=num_frames, shapes=tuple(shapes))
        if not shapes_overlap(scene):
            return scene
    return None


def _sample(
    rng: np.random.Generator, make_plans: Callable[[], list[_Plan]], num_frames: int
) -> Scene:
    """Draw plans and place them; draw new plans when they leave no room. Overlap is symmetric
    under time reversal, so this conditioning keeps the samplers symmetric too."""
    for _ in range(_PLAN_TRIES):
        scene = _place(rng, make_plans(), num_frames)
        if scene is not None:
            return scene
    raise RuntimeError(  # pragma: no cover - the canvas has room for three 20px shapes
        f"could not place shapes without overlap in {_PLAN_TRIES} x {_PLACEMENT_TRIES} tries"
    )


def sample_still_scene(
    rng: np.random.Generator, num_shapes: int | None = None, num_frames: int | None = None
) -> Scene:
    """1-3 shapes (distinct colours and kinds) visible in every frame; each is static or
    moving (even odds, uniform direction). Any single frame shows everything there is."""
    num_frames = sample_num_frames(rng) if num_frames is None else num_frames
    num_shapes = int(rng.integers(1, len(KINDS) + 1)) if num_shapes is None else num_shapes
    looks = _looks(rng, num_shapes)

    def make_plans() -> list[_Plan]:
        plans = []
        for colour, kind, size in looks:
            plan = _Plan(colour, kind, size)
            if rng.random() < 0.5:
                plan.motion = str(rng.choice(DIRECTIONS))
                plan.speed = _speed(rng, size, num_frames, FRAME_SIZE)
            plans.append(plan)
        return plans

    return _sample(rng, make_plans, num_frames)


def sample_queue_scene(
    rng: np.random.Generator, num_shapes: int, num_frames: int | None = None
) -> Scene:
    """Static shapes appearing one after another, then disappearing in the same order.

    The clip is cut into ``2 * num_shapes + 1`` stretches: empty lead-in, ``num_shapes - 1``
    gaps between appearances, all shapes together, ``num_shapes - 1`` gaps between
    disappearances, empty tail. The gaps and the together stretch last at least
    ``MIN_EVENT_GAP`` frames; the spare frames are spread over all stretches uniformly at random
    (a symmetric multinomial, so reversing time gives an equally likely queue). The shapes are
    listed in random order, not in order of appearance. ``num_frames`` defaults to a random
    choice among those of ``FRAME_COUNTS`` that fit.
    """
    if not 2 <= num_shapes <= len(KINDS):
        raise ValueError(f"a queue scene holds 2 to {len(KINDS)} shapes, got {num_shapes}")
    needed = (2 * num_shapes - 1) * MIN_EVENT_GAP
    if num_frames is None:
        fitting = [count for count in FRAME_COUNTS if count >= needed]
        num_frames = sample_num_frames(rng, fitting)
    if num_frames < needed:
        raise ValueError(
            f"a queue of {num_shapes} shapes needs at least {needed} frames, got {num_frames}"
        )
    stretches = 2 * num_shapes + 1
    minimum = np.array([0] + [MIN_EVENT_GAP] * (stretches - 2) + [0])
    lengths = minimum + rng.multinomial(num_frames - needed, [1 / stretches] * stretches)
    bounds = np.cumsum(lengths)  # bounds[k] = end of stretch k
    appears = [int(bounds[k]) for k in range(num_shapes)]  # after lead-in and each gap
    disappears = [int(bounds[num_shapes + k]) for k in range(num_shapes)]
    plans = []
    looks = _looks(rng, num_shapes)
    for rank, (colour, kind, size) in enumerate(looks):
        end = disappears[rank]
        plans.append(
            _Plan(
                colour,
                kind,
                size,
                appear=appears[rank],
                disappear=None if end >= num_frames else end,
            )
        )
    order = rng.permutation(num_shapes)
    return _sample(rng, lambda: [plans[i] for i in order], num_frames)


def _lifespan(rng: np.random.Generator, num_frames: int) -> tuple[int, int | None]:
    """Whole clip (1/2), appear late (1/4) or leave early (1/4), mirror images of each other."""
    draw = rng.random()
    if draw < 0.5:
        return 0, None
    cut = int(rng.integers(MIN_EVENT_GAP, num_frames - MIN_EVENT_GAP + 1))
    return (cut, None) if draw < 0.75 else (0, num_frames - cut)


def sample_mover_scene(
    rng: np.random.Generator, num_shapes: int | None = None, num_frames: int | None = None
) -> tuple[Scene, int]:
    """One shape moving the whole clip (uniform direction), visible in every frame, and up to
    two static ones that may appear late or leave early. Returns the scene and the mover's
    index (random: the shapes are listed in random order)."""
    num_frames = sample_num_frames(rng) if num_frames is None else num_frames
    num_shapes = int(rng.integers(1, len(KINDS) + 1)) if num_shapes is None else num_shapes
    looks = _looks(rng, num_shapes)
    order = [int(i) for i in rng.permutation(num_shapes)]

    def make_plans() -> list[_Plan]:
        plans = []
        for index, (colour, kind, size) in enumerate(looks):
            if index == 0:
                plan = _Plan(colour, kind, size, motion=str(rng.choice(DIRECTIONS)))
                plan.speed = _speed(rng, size, num_frames, FRAME_SIZE)
            else:
                appear, disappear = _lifespan(rng, num_frames)
                plan = _Plan(colour, kind, size, appear=appear, disappear=disappear)
            plans.append(plan)
        return [plans[i] for i in order]

    return _sample(rng, make_plans, num_frames), order.index(0)


def sample_opposite_movers_scene(rng: np.random.Generator, num_frames: int | None = None) -> Scene:
    """Two shapes moving in opposite directions along one axis (left/right or up/down), both
    visible in every frame, and with even odds a third, static one. Shapes in random order."""
    num_frames = sample_num_frames(rng) if num_frames is None else num_frames
    num_shapes = 2 + int(rng.random() < 0.5)
    looks = _looks(rng, num_shapes)
    axis = ("left", "right") if rng.random() < 0.5 else ("up", "down")
    first = str(rng.choice(axis))
    order = rng.permutation(num_shapes)

    def make_plans() -> list[_Plan]:
        plans = []
        for index, (colour, kind, size) in enumerate(looks):
            plan = _Plan(colour, kind, size)
            if index < 2:
                plan.motion = first if index == 0 else _OPPOSITE[first]
                plan.speed = _speed(rng, size, num_frames, FRAME_SIZE)
            plans.append(plan)
        return [plans[i] for i in order]

    return _sample(rng, make_plans, num_frames)
