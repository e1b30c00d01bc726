"""Scenes: rendering, exact time reversal, and the properties each sampler promises."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from videoktr.synthetic.world import (
    COLOURS,
    FRAME_COUNTS,
    FRAME_SIZE,
    MAX_TRAVEL,
    MIN_EVENT_GAP,
    MIN_TRAVEL,
    SIZE_RANGE,
    Scene,
    Shape,
    render,
    reverse_frames,
    sample_mover_scene,
    sample_opposite_movers_scene,
    sample_queue_scene,
    sample_still_scene,
    shape_mask,
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


def test_render_draws_each_visible_shape_in_its_colour_on_black():
    circle = Shape("red", "circle", 16, x=4, y=4, appear=2, disappear=6)
    square = Shape("blue", "square", 14, x=40, y=30, motion="down", speed=2)
    scene = Scene(num_frames=8, shapes=(circle, square))
    frames = render(scene)
    assert frames.shape == (8, FRAME_SIZE, FRAME_SIZE, 3) and frames.dtype == np.uint8
    for frame in range(8):
        patch = frames[frame, 4:20, 4:20]
        if 2 <= frame < 6:
            assert (patch[shape_mask("circle", 16)] == COLOURS["red"]).all()
            assert (patch[~shape_mask("circle", 16)] == 0).all()
        else:
            assert (patch == 0).all()
        y = 30 + 2 * frame
        assert (frames[frame, y : y + 14, 40:54] == COLOURS["blue"]).all()
    drawn = (frames.sum(-1) > 0).sum(axis=(1, 2))
    assert list(drawn) == [
        14 * 14 + (frame in range(2, 6)) * shape_mask("circle", 16).sum() for frame in range(8)
    ]


def test_masks_have_the_expected_shape():
    triangle = shape_mask("triangle", 16)
    assert (
        triangle[-1].all()
        and triangle[0].sum() == 2
        and triangle[:, 7].all()
        and triangle[:, 8].all()
    )
    assert triangle.sum(axis=1).tolist() == sorted(triangle.sum(axis=1).tolist())
    assert shape_mask("square", 15).all()
    circle = shape_mask("circle", 20)
    assert circle[10, 0] and circle[10, 19] and not circle[0, 0]


@pytest.mark.parametrize("name", SAMPLERS)
def test_reverse_frames_is_an_exact_time_reversal(name):
    for seed in SEEDS:
        scene = SAMPLERS[name](np.random.default_rng(seed))
        reversed_scene = reverse_frames(scene)
        assert np.array_equal(render(reversed_scene), render(scene)[::-1])
        assert reverse_frames(reversed_scene) == scene


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


def test_scene_round_trips_through_a_dict():
    scene = sample_mover_scene(np.random.default_rng(5))[0]
    data = scene.to_dict()
    assert data["shapes"][0]["rgb"] == list(COLOURS[scene.shapes[0].colour])
    assert Scene.from_dict(data) == scene


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({"colour": "purple", "kind": "circle", "size": 16, "x": 0, "y": 0}, "unknown colour"),
        ({"colour": "red", "kind": "star", "size": 16, "x": 0, "y": 0}, "unknown kind"),
        (
            {"colour": "red", "kind": "circle", "size": 16, "x": 0, "y": 0, "motion": "left"},
            "speed",
        ),
        (
            {
                "colour": "red",
                "kind": "circle",
                "size": 16,
                "x": 0,
                "y": 0,
                "appear": 3,
                "disappear": 3,
            },
            "disappear",
        ),
    ],
)
def test_bad_shapes_are_rejected(shape, message):
    with pytest.raises(ValueError, match=message):
        Shape(**shape)


def test_scenes_reject_shapes_leaving_the_canvas_or_the_clip():
    with pytest.raises(ValueError, match=f"leaves the {FRAME_SIZE}x{FRAME_SIZE} canvas"):
        Scene(8, (Shape("red", "circle", 16, x=FRAME_SIZE - 24, y=0, motion="right", speed=2),))
    with pytest.raises(ValueError, match="appears at frame 9"):
        Scene(8, (Shape("red", "circle", 16, x=0, y=0, appear=9),))
    with pytest.raises(ValueError, match="past the end"):
        Scene(8, (Shape("red", "circle", 16, x=0, y=0, disappear=9),))
