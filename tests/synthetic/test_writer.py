"""The written dataset: files, determinism, loading with the data layer, colours, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from videoktr.cli import main
from videoktr.data import VideoR1Dataset, build_prompt_inputs, decode_video
from videoktr.synthetic import (
    QUESTION_KINDS,
    Scene,
    generate_dataset,
    generate_rows,
    rebuild_question,
    render,
    split_rows,
    write_video,
)
from videoktr.synthetic import writer as writer_module
from videoktr.synthetic.world import shape_mask

from .conftest import N_ROWS, SEED, read_jsonl

COLOUR_TOLERANCE = 8  # per channel, mean over a shape's interior


def _erode(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    for _ in range(steps):
        padded = np.pad(mask, 1)
        mask = (
            padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
            & padded[1:-1, :-2] & padded[1:-1, 2:]
        )  # fmt: skip
    return mask


def assert_colours_survive(scene: Scene, frames: np.ndarray, background_tolerance: int = 8) -> None:
    """``frames`` ``[T, H, W, 3]`` decoded: the mean colour inside each visible shape (one pixel
    in from its edge) is within ``COLOUR_TOLERANCE`` of the shape's colour; the background more
    than 2 px away from any shape is black within ``background_tolerance``."""
    assert frames.shape == (scene.num_frames, scene.height, scene.width, 3)
    for frame in range(scene.num_frames):
        drawn = np.zeros((scene.height, scene.width), dtype=bool)
        for index in scene.visible_shapes(frame):
            shape = scene.shapes[index]
            x, y = shape.position(frame)
            mask = np.zeros_like(drawn)
            mask[y : y + shape.size, x : x + shape.size] = shape_mask(shape.kind, shape.size)
            drawn |= mask
            inside = frames[frame][_erode(mask)].astype(float).mean(axis=0)
            assert np.abs(inside - shape.rgb).max() <= COLOUR_TOLERANCE, (frame, shape, inside)
        assert frames[frame][~_dilate(drawn)].max(initial=0) <= background_tolerance


def _dilate(mask: np.ndarray, steps: int = 2) -> np.ndarray:
    for _ in range(steps):
        padded = np.pad(mask, 1)
        mask = (
            padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1]
            | padded[1:-1, :-2] | padded[1:-1, 2:]
        )  # fmt: skip
    return mask


def test_files_and_counts(written):
    out = written.out
    assert (out / "train.jsonl").is_file() and (out / "test.jsonl").is_file()
    world = json.loads((out / "world.json").read_text())
    assert world["seed"] == SEED and world["n"] == N_ROWS
    assert world["counts"] == written.summary.counts
    assert sum(sum(c.values()) for c in world["counts"].values()) == N_ROWS
    assert len(list((out / "videos").glob("*.mp4"))) == N_ROWS
    assert sorted(row["id"] for row in written.rows) == [
        f"synth-{SEED}-{i:06d}" for i in range(N_ROWS)
    ]
    # 0.2 of 24 -> 5 test rows, kinds as even as possible in both splits
    test = written.summary.counts["test"]
    train = written.summary.counts["train"]
    assert sum(test.values()) == 5 and max(test.values()) - min(test.values()) <= 1
    assert max(train.values()) - min(train.values()) <= 1
    assert written.summary.rows_per_second > 0 and written.summary.video_bytes > 0


def test_rows_carry_the_video_r1_fields_and_rebuild_from_scene_and_spec(written):
    for row in written.rows:
        assert row["problem_type"] == "multiple choice" and row["data_type"] == "video"
        assert row["path"] == f"./videos/{row['id']}.mp4"
        assert row["kind"] in QUESTION_KINDS
        question = rebuild_question(row)
        assert question.trace == row["trace"] and question.solution == row["solution"]
        assert [list(pair) for pair in question.trace_words] == row["trace_words"]
        assert row["options"] == question.labelled_options and row["process"] == question.process


def test_every_row_loads_and_its_video_decodes_with_every_frame(written):
    for split in ("train", "test"):
        dataset = VideoR1Dataset(
            written.out / f"{split}.jsonl", on_bad_sample="raise", fps=4, max_frames=16
        )
        assert dataset.num_skipped_rows == 0
        assert len(dataset) == sum(written.summary.counts[split].values())
        for sample in dataset:
            scene = Scene.from_dict(sample.row["scene"])
            video = decode_video(sample.path, fps=4, max_frames=16)
            assert video.num_frames == video.total_frames == scene.num_frames
            assert video.source_fps == pytest.approx(4.0)
            frames = video.frames.permute(0, 2, 3, 1).numpy()
            assert_colours_survive(scene, frames)
            # The library default (2 fps) keeps every second frame of the 4 fps clip.
            assert decode_video(sample.path).frame_indices == list(range(1, scene.num_frames, 2))


def test_mpeg4_fallback_keeps_colours_too(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "video_codec", lambda: "mpeg4")
    for row, frames in generate_rows(3, seed=5):
        path = write_video(frames, tmp_path / f"{row['id']}.mp4", fps=4)
        decoded = decode_video(path, fps=4, max_frames=16)
        frames = decoded.frames.permute(0, 2, 3, 1).numpy()
        # MPEG-4 part 2 rings a little around edges (DCT blocks), hence the looser background
        assert_colours_survive(Scene.from_dict(row["scene"]), frames, background_tolerance=32)


def test_same_seed_same_rows_and_frames_other_seed_other_rows(tmp_path):
    first = generate_dataset(tmp_path / "a", 6, seed=9)
    again = generate_dataset(tmp_path / "b", 6, seed=9)
    other = generate_dataset(tmp_path / "c", 6, seed=10)
    assert first.train_file.read_text() == again.train_file.read_text()
    assert first.test_file.read_text() == again.test_file.read_text()
    for video in sorted((tmp_path / "a" / "videos").iterdir()):
        twin = tmp_path / "b" / "videos" / video.name
        assert video.read_bytes() == twin.read_bytes()
        assert np.array_equal(decode_video(video, fps=4).frames, decode_video(twin, fps=4).frames)
    rows = read_jsonl(first.train_file) + read_jsonl(first.test_file)
    other_rows = read_jsonl(other.train_file) + read_jsonl(other.test_file)

    def strip(row):
        return {k: v for k, v in row.items() if k not in ("id", "path")}

    assert not any(strip(a) == strip(b) for a in rows for b in other_rows)


def test_row_i_does_not_depend_on_n():
    short = generate_rows(3, seed=4)
    long = generate_rows(6, seed=4)
    for (row, frames), (row_again, frames_again) in zip(short, long[:3]):
        assert row == row_again and np.array_equal(frames, frames_again)
        assert np.array_equal(frames, render(Scene.from_dict(row["scene"])))


def test_split_is_stratified_and_deterministic():
    kinds = [QUESTION_KINDS[i % 3] for i in range(100)]
    in_test = split_rows(kinds, 0.2, seed=1)
    assert in_test == split_rows(kinds, 0.2, seed=1) and in_test != split_rows(kinds, 0.2, seed=2)
    assert sum(in_test) == 20
    per_kind = [sum(t for t, k in zip(in_test, kinds) if k == kind) for kind in QUESTION_KINDS]
    assert max(per_kind) - min(per_kind) <= 1
    assert split_rows(["visual"], 0.5, 0) == [False]
    assert sum(split_rows(kinds[:2], 0.01, 0)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be an int >= 1"),
        ({"n": 2.5}, "n must be an int >= 1"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"test_fraction": 0.0}, "test_fraction must be strictly between 0 and 1"),
        ({"test_fraction": 1.0}, "test_fraction must be strictly between 0 and 1"),
        ({"fps": 0}, "fps must be a positive finite number"),
        ({"fps": -4}, "fps must be a positive finite number"),
    ],
)
def test_bad_arguments_are_reported(tmp_path, kwargs, message):
    arguments = {"out_dir": tmp_path, "n": 2, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_dataset(**arguments)
    assert not (tmp_path / "train.jsonl").exists()


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8 array"):
        write_video(np.zeros((2, 64, 64, 3), dtype=np.float32), tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="even height and width"):
        write_video(np.zeros((2, 63, 64, 3), dtype=np.uint8), tmp_path / "x.mp4")


def test_cli_synth_writes_the_files(tmp_path, capsys):
    out = tmp_path / "world"
    assert (
        main(["synth", "--out", str(out), "--n", "4", "--seed", "2", "--test-fraction", "0.25"])
        == 0
    )
    printed = capsys.readouterr().out
    assert str(out / "train.jsonl") in printed and str(out / "test.jsonl") in printed
    assert "train:" in printed and "3 rows" in printed and "visual" in printed
    assert len(read_jsonl(out / "train.jsonl")) == 3 and len(read_jsonl(out / "test.jsonl")) == 1
    assert (out / "world.json").is_file() and len(list((out / "videos").glob("*.mp4"))) == 4
    assert main(["synth", "--out", str(out), "--n", "0"]) == 2
    assert "n must be an int >= 1" in capsys.readouterr().err


def test_the_processor_pipeline_accepts_a_row(written):
    from videoktr.models.tiny import build_processor

    processor = build_processor("qwen2_5_vl")
    dataset = VideoR1Dataset(written.out / "train.jsonl", fps=4, max_frames=16)
    item = dataset.decode(0)
    assert item is not None
    inputs = build_prompt_inputs(processor, item.sample, item.media)
    grid = inputs["video_grid_thw"]
    assert int(grid[0, 0]) == item.media.num_frames // 2
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    assert item.sample.problem in text and item.sample.options[0] in text
    assert inputs["second_per_grid_ts"].tolist() == [pytest.approx(0.5)]
