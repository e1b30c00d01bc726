"""Scene samplers: each question family draws its scenes from one, chosen so that the family's
claim holds by construction.

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

Every sampler's distribution is invariant under ``reverse_frames`` (see ``videoktr.synthetic.world``).
All sampling goes through a ``numpy.random.Generator``: the same generator state gives the same
scene.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .world import (
    COLOURS,
    DIRECTIONS,
    FRAME_COUNTS,
    FRAME_SIZE,
    KINDS,
    MAX_TRAVEL,
    MIN_EVENT_GAP,
    MIN_TRAVEL,
    MOTION_STEP,
    SIZE_RANGE,
    Scene,
    Shape,
    opposite_direction,
    shapes_overlap,
)

__all__ = [
    "sample_mover_scene",
    "sample_num_frames",
    "sample_opposite_movers_scene",
    "sample_queue_scene",
    "sample_still_scene",
]

_PLACEMENT_TRIES = 100
_PLAN_TRIES = 100


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
            dx, dy = MOTION_STEP[plan.motion]
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
                plan.motion = first if index == 0 else opposite_direction(first)
                plan.speed = _speed(rng, size, num_frames, FRAME_SIZE)
            plans.append(plan)
        return [plans[i] for i in order]

    return _sample(rng, make_plans, num_frames)
