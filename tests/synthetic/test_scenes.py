"""Scene samplers: deterministic, never overlapping, and each with the property its families rely on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from videoktr.synthetic.scenes import (
    sample_mover_scene,
    sample_opposite_movers_scene,
    sample_queue_scene,
    sample_still_scene,
)
from videoktr.synthetic.world import (
    FRAME_COUNTS,
    MAX_TRAVEL,
    MIN_EVENT_GAP,
    MIN_TRAVEL,
    SIZE_RANGE,
    shapes_overlap,
)

SEEDS = range(40)


def samplers():
    yield "still", lambda rng: sample_still_scene(rng)
    yield "queue2", lambda rng: sample_queue_scene(rng, 2)
    yield "queue3", lambda rng: sample_queue_scene(rng, 3)
    yield "mover", lambda rng: sample_mover_scene(rng)[0]
    yield "opposite", lambda rng: sample_opposite_movers_scene(rng)


SAMPLERS = dict(samplers())


@pytest.mark.parametrize("name", SAMPLERS)
def test_samplers_are_deterministic_and_never_overlap(name):
    scenes = [SAMPLERS[name](np.random.default_rng(seed)) for seed in SEEDS]
    again = [SAMPLERS[name](np.random.default_rng(seed)) for seed in SEEDS]
    assert scenes == again
    assert len({repr(scene) for scene in scenes}) == len(scenes)
    for scene in scenes:
        assert scene.num_frames in FRAME_COUNTS
        assert not shapes_overlap(scene)
        colours = [shape.colour for shape in scene.shapes]
        kinds = [shape.kind for shape in scene.shapes]
        assert len(set(colours)) == len(colours) and len(set(kinds)) == len(kinds)
        assert all(SIZE_RANGE[0] <= shape.size <= SIZE_RANGE[1] for shape in scene.shapes)


def test_still_scenes_show_every_shape_in_every_frame():
    for seed in SEEDS:
        scene = sample_still_scene(np.random.default_rng(seed))
        assert 1 <= len(scene.shapes) <= 3
        for frame in range(scene.num_frames):
            assert scene.visible_shapes(frame) == list(range(len(scene.shapes)))


@pytest.mark.parametrize("num_shapes", [2, 3])
def test_queue_scenes_are_first_in_first_out_with_a_stretch_showing_all(num_shapes):
    for seed in SEEDS:
        scene = sample_queue_scene(np.random.default_rng(seed), num_shapes)
        shapes = sorted(scene.shapes, key=lambda s: s.appear)
        ends = [scene.num_frames if s.disappear is None else s.disappear for s in shapes]
        appears = [s.appear for s in shapes]
        assert ends == sorted(ends) and len(set(ends)) == num_shapes  # same order out
        events = appears + ends
        assert all(b - a >= MIN_EVENT_GAP for a, b in itertools.pairwise(events))
        together = [
            f for f in range(scene.num_frames) if len(scene.visible_shapes(f)) == num_shapes
        ]
        assert len(together) >= MIN_EVENT_GAP
        assert all(s.motion == "static" for s in shapes)
        # Keeping every second frame (2 fps of a 4 fps clip) still shows every event in order.
        kept = range(1, scene.num_frames, 2)
        firsts = [
            min(f for f in kept if scene.shapes.index(s) in scene.visible_shapes(f)) for s in shapes
        ]
        assert firsts == sorted(firsts) and len(set(firsts)) == num_shapes


def test_queue_scenes_list_shapes_in_random_order():
    first_listed_first = [
        min(range(2), key=lambda i: scene.shapes[i].appear) == 0
        for scene in (sample_queue_scene(np.random.default_rng(seed), 2) for seed in range(60))
    ]
    assert 10 < sum(first_listed_first) < 50


def test_mover_scenes_keep_the_mover_in_view_and_moving():
    for seed in SEEDS:
        scene, mover = sample_mover_scene(np.random.default_rng(seed))
        shape = scene.shapes[mover]
        assert shape.motion != "static" and shape.appear == 0 and shape.disappear is None
        travel = shape.speed * (scene.num_frames - 1)
        assert MIN_TRAVEL <= travel <= MAX_TRAVEL
        assert sum(s.motion != "static" for s in scene.shapes) == 1


def test_opposite_movers_move_apart_along_one_axis():
    for seed in SEEDS:
        scene = sample_opposite_movers_scene(np.random.default_rng(seed))
        motions = sorted(s.motion for s in scene.shapes if s.motion != "static")
        assert motions in (["left", "right"], ["down", "up"])
        assert all(s.appear == 0 and s.disappear is None for s in scene.shapes)


