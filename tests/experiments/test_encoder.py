"""Encoder pre-training targets follow the pixels, and pre-training touches only the encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videoktr.data.dataset import VideoR1Dataset
from videoktr.experiments.encoder import (
    LABEL_NAMES,
    label_counts,
    pretrain_vision_encoder,
    region_targets,
)
from videoktr.models.tiny import build_tiny_model
from videoktr.synthetic import COLOURS, KINDS, Scene, render, sample_question


def _scenes(count: int):
    rng = np.random.default_rng(11)
    return [sample_question(rng)[0] for _ in range(count)]


def _colours_in_cells(frames: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[T, rows, cols, colours]: which world colours are drawn in each cell, read off the RGB."""
    height, width = frames.shape[1:3]
    row_of = (np.arange(height) * rows) // height
    col_of = (np.arange(width) * cols) // width
    out = np.zeros((frames.shape[0], rows, cols, len(COLOURS)), dtype=bool)
    for c, rgb in enumerate(COLOURS.values()):
        hits = (frames == np.array(rgb, dtype=np.uint8)).all(-1)
        for t, y, x in zip(*np.nonzero(hits)):
            out[t, row_of[y], col_of[x], c] = True
    return out


@pytest.mark.parametrize("rows, cols", [(2, 2), (4, 4), (2, 3)])
def test_colour_labels_are_the_colours_drawn_in_each_cell(rows, cols):
    for scene in _scenes(12):
        frames = render(scene)
        indices = list(range(scene.num_frames))
        targets = region_targets(scene, indices, (scene.num_frames // 2, 2 * rows, 2 * cols))
        per_colour = targets.view(scene.num_frames // 2, rows, cols, len(COLOURS), len(KINDS)).amax(-1).bool()
        drawn = _colours_in_cells(frames, rows, cols)
        # A token covers two frames: a colour is on if drawn in either.
        expected = torch.from_numpy(drawn[0::2] | drawn[1::2])
        assert torch.equal(per_colour, expected)


def test_kind_labels_name_the_shape_and_follow_it_when_it_moves():
    scene = Scene.from_dict({
        "num_frames": 4, "width": 64, "height": 64,
        "shapes": [{"colour": "red", "kind": "triangle", "size": 16, "x": 0, "y": 0, "motion": "right", "speed": 12},
                   {"colour": "blue", "kind": "circle", "size": 14, "x": 40, "y": 44, "appear": 2}],
    })
    targets = region_targets(scene, [0, 1, 2, 3], (2, 4, 4)).view(2, 2, 2, len(LABEL_NAMES))
    red_triangle = LABEL_NAMES.index("red triangle")
    blue_circle = LABEL_NAMES.index("blue circle")
    # Frames 0-1: the triangle spans x 0..27 (top-left cell only); the circle is not there yet.
    assert targets[0, :, :, red_triangle].tolist() == [[True, False], [False, False]]
    assert not targets[0, :, :, blue_circle].any()
    # Frames 2-3: the triangle spans x 24..51 (frames 2-3), both top cells; the circle sits bottom right.
    assert targets[1, :, :, red_triangle].tolist() == [[True, True], [False, False]]
    assert targets[1, :, :, blue_circle].tolist() == [[False, False], [False, True]]
    assert targets.sum() == 1 + 2 + 1


def test_pretraining_changes_only_the_encoder_and_lowers_its_loss(tmp_path):
    from videoktr.synthetic import generate_dataset

    generate_dataset(tmp_path, 12, 5, test_fraction=0.25, fps=4, progress=False)
    dataset = VideoR1Dataset(tmp_path / "train.jsonl", fps=4, min_frames=4, max_frames=16)
    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    result = pretrain_vision_encoder(model, processor, dataset, steps=30, learning_rate=3e-3,
                                     clips_per_step=3, progress=False)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith("model.visual.") for name in changed)
    assert "model.visual.patch_embed.proj.weight" in changed
    assert np.mean(result.losses[-5:]) < 0.5 * result.losses[0]
    assert 0.0 <= result.label_precision <= 1.0 and 0.0 <= result.label_recall <= 1.0


def test_label_counts_score_only_the_labels_that_are_on():
    # Three tokens, two labels. Token 0: both off, predicted off (right). Token 1: label 0 on and
    # found. Token 2: label 1 on but missed, label 0 predicted on wrongly.
    targets = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    logits = torch.tensor([[-3.0, -2.0], [2.0, -1.0], [0.5, -0.5]])
    assert label_counts(logits, targets) == {"tokens_right": 2, "true_positive": 1, "predicted": 2, "actual": 2}
    # A head that predicts everything off gets most tokens right and finds nothing.
    assert label_counts(torch.full((3, 2), -1.0), targets) == {
        "tokens_right": 1, "true_positive": 0, "predicted": 0, "actual": 2}


def test_rows_without_a_scene_are_refused(tmp_path):
    from videoktr.synthetic import generate_dataset

    generate_dataset(tmp_path, 6, 5, test_fraction=0.34, fps=4, progress=False)
    rows = (tmp_path / "train.jsonl").read_text().splitlines()
    import json

    stripped = [json.dumps({k: v for k, v in json.loads(line).items() if k != "scene"}) for line in rows]
    (tmp_path / "plain.jsonl").write_text("\n".join(stripped) + "\n")
    dataset = VideoR1Dataset(tmp_path / "plain.jsonl", fps=4, min_frames=4, max_frames=16)
    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    with pytest.raises(ValueError, match="scene"):
        pretrain_vision_encoder(model, processor, dataset, steps=2, clips_per_step=1, progress=False)
