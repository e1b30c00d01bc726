"""Scenes: rendering, exact time reversal, validation and serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from videoktr.synthetic.scenes import sample_mover_scene
from videoktr.synthetic.world import (
    COLOURS,
    FRAME_SIZE,
    Scene,
    Shape,
    render,
    reverse_frames,
    shape_mask,
)

from .test_scenes import SAMPLERS, SEEDS


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
