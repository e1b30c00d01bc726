"""Video-R1 dataset loading: row validation, path confinement, and media skipped at decode time."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import torch

from videoktr.data import (
    BadSampleWarning,
    DatasetError,
    DecodedVideo,
    MediaSample,
    Sample,
    SkippedMedia,
    VideoR1Dataset,
    load_media,
)

from .media import write_random_bytes, write_video


def good_row(**overrides) -> dict:
    row = {
        "problem_id": 7,
        "problem": "Which colour is the ball?",
        "problem_type": "multiple choice",
        "options": ["A. red", "B. blue"],
        "solution": "<answer>B</answer>",
        "path": "./videos/clip.mp4",
        "data_type": "video",
        "data_source": "unit-test",
    }
    row.update(overrides)
    return row


def write_json(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_quietly(*args, **kwargs) -> VideoR1Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadSampleWarning)
        return VideoR1Dataset(*args, **kwargs)


# ----------------------------------------------------------------------------- good rows


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_loads_good_rows(tmp_path, suffix):
    rows = [
        good_row(),
        good_row(problem_type="numerical", options=[], solution="<answer>3</answer>"),
        good_row(problem_type="OCR", path="./images/sign.png", data_type="image"),
        good_row(problem_type="free-form"),
        good_row(problem_type="regression", solution="<answer>2.5</answer>"),
    ]
    del rows[3]["options"]  # options are optional outside multiple choice
    writer = write_json if suffix == ".json" else write_jsonl
    file = writer(tmp_path / f"train{suffix}", rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        dataset = VideoR1Dataset(file)

    assert len(dataset) == 5 and dataset.num_skipped_rows == 0
    assert dataset.data_root == tmp_path.resolve()
    first = dataset[0]
    assert isinstance(first, Sample)
    assert first.path == tmp_path.resolve() / "videos" / "clip.mp4"
    assert (first.problem, first.problem_type, first.data_type) == (
        "Which colour is the ball?",
        "multiple choice",
        "video",
    )
    assert first.options == ["A. red", "B. blue"] and first.answer == "B"
    assert first.row["problem_id"] == 7 and first.row["data_source"] == "unit-test"
    assert dataset[3].options == []
    assert dataset[2].data_type == "image"
    row_ids = [sample.row_id for sample in dataset.samples]
    assert row_ids == ([0, 1, 2, 3, 4] if suffix == ".json" else [1, 2, 3, 4, 5])
    assert dataset.summary() == (
        f"loaded 5 rows from {file}; skipped 0 malformed rows; skipped 0 unreadable media"
    )


def test_jsonl_blank_lines_are_ignored_but_counted_in_line_numbers(tmp_path):
    file = tmp_path / "train.jsonl"
    file.write_text("\n" + json.dumps(good_row()) + "\n\n" + json.dumps(good_row()) + "\n")
    dataset = VideoR1Dataset(file)
    assert [s.row_id for s in dataset.samples] == [2, 4]
    assert dataset[1].location == f"{file} line 4"


def test_explicit_data_root(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    file = write_json(tmp_path / "train.json", [good_row()])
    dataset = VideoR1Dataset(file, data_root=root)
    assert dataset[0].path == root.resolve() / "videos" / "clip.mp4"


def test_answer_without_tags_is_the_whole_solution(tmp_path):
    dataset = VideoR1Dataset(write_json(tmp_path / "t.json", [good_row(solution="  42 ")]))
    assert dataset[0].answer == "42"


# ----------------------------------------------------------------------------- malformed rows


def _without(key):
    row = good_row()
    del row[key]
    return row


MALFORMED_ROWS = {
    "missing problem": (_without("problem"), "problem", "missing"),
    "missing solution": (_without("solution"), "solution", "missing"),
    "missing path": (_without("path"), "path", "missing"),
    "missing data_type": (_without("data_type"), "data_type", "missing"),
    "missing problem_type": (_without("problem_type"), "problem_type", "missing"),
    "problem not a string": (good_row(problem=["what?"]), "problem", "must be a string, got list"),
    "empty problem": (good_row(problem="  "), "problem", "must not be empty"),
    "path not a string": (good_row(path=3), "path", "must be a string, got int"),
    "unknown problem_type": (
        good_row(problem_type="essay"),
        "problem_type",
        "unknown problem type 'essay'",
    ),
    "unknown data_type": (good_row(data_type="audio"), "data_type", "unknown data type 'audio'"),
    "multiple choice without options": (_without("options"), "options", "missing"),
    "multiple choice with null options": (good_row(options=None), "options", "missing"),
    "multiple choice with empty options": (good_row(options=[]), "options", "empty"),
    "options not a list": (good_row(options="A. red"), "options", "must be a list of strings"),
    "options with non-strings": (good_row(options=["A. red", 2]), "options", "non-string"),
    "row not an object": (["problem", "path"], None, "row is not a JSON object (got list)"),
}


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
@pytest.mark.parametrize("case", sorted(MALFORMED_ROWS))
def test_malformed_row_is_skipped_with_a_warning_naming_file_row_and_field(tmp_path, suffix, case):
    bad, field, reason = MALFORMED_ROWS[case]
    writer = write_json if suffix == ".json" else write_jsonl
    file = writer(tmp_path / f"train{suffix}", [good_row(), bad, good_row()])
    row = "index 1" if suffix == ".json" else "line 2"
    where = "row" if field is None else f"field {field!r}"
    expected_start = f"{file} {row}: {where}: "

    with pytest.warns(BadSampleWarning) as record:
        dataset = VideoR1Dataset(file)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    assert messages[0].startswith(expected_start) and reason in messages[0]
    assert len(dataset) == 2 and dataset.num_skipped_rows == 1
    skipped = dataset.skipped_rows[0]
    assert (skipped.row_id, skipped.field) == ((1 if suffix == ".json" else 2), field)
    assert "skipped 1 malformed rows" in dataset.summary()

    with pytest.raises(DatasetError) as caught:
        VideoR1Dataset(file, on_bad_sample="raise")
    assert str(caught.value) == messages[0]


def test_invalid_json_line_is_a_malformed_row(tmp_path):
    file = write_jsonl(
        tmp_path / "train.jsonl", [good_row(), '{"problem": "unterminated', good_row()]
    )
    with pytest.warns(BadSampleWarning, match=r"line 2: row: invalid JSON"):
        dataset = VideoR1Dataset(file)
    assert len(dataset) == 2 and dataset.num_skipped_rows == 1
    with pytest.raises(DatasetError, match="line 2: row: invalid JSON"):
        VideoR1Dataset(file, on_bad_sample="raise")


def test_every_bad_row_is_reported(tmp_path):
    rows = [good_row(), _without("problem"), good_row(data_type="gif"), good_row(options=[])]
    with pytest.warns(BadSampleWarning) as record:
        dataset = VideoR1Dataset(write_jsonl(tmp_path / "t.jsonl", rows))
    assert [r.field for r in dataset.skipped_rows] == ["problem", "data_type", "options"]
    assert [r.row_id for r in dataset.skipped_rows] == [2, 3, 4]
    assert len(record) == 3 and len(dataset) == 1


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "absent.json", "no such dataset file"),
        ("[]", "train.csv", "expected a .json or .jsonl file"),
        ("[{", "train.json", "invalid JSON at line 1"),
        ('{"rows": []}', "train.json", "must hold a list of rows, got dict"),
    ],
)
def test_file_level_problems_always_raise(tmp_path, content, name, message):
    file = tmp_path / name
    if content is not None:
        file.write_text(content)
    with pytest.raises(DatasetError, match=message) as caught:
        VideoR1Dataset(file)  # on_bad_sample="skip" cannot skip a whole file
    assert str(file) in str(caught.value)


def test_data_root_must_be_a_directory(tmp_path):
    file = write_json(tmp_path / "t.json", [good_row()])
    with pytest.raises(DatasetError, match="data root .* is not a directory"):
        VideoR1Dataset(file, data_root=tmp_path / "absent")


def test_on_bad_sample_is_checked(tmp_path):
    with pytest.raises(ValueError, match="on_bad_sample"):
        VideoR1Dataset(write_json(tmp_path / "t.json", []), on_bad_sample="ignore")


# ----------------------------------------------------------------------------- path confinement


@pytest.fixture
def rooted(tmp_path):
    """A data root with one real file inside and one file outside it."""
    root = tmp_path / "root"
    (root / "videos").mkdir(parents=True)
    (root / "videos" / "inside.mp4").write_bytes(b"x")
    (tmp_path / "outside.mp4").write_bytes(b"x")
    return root


def _load_single(root: Path, path: str, on_bad_sample="skip") -> VideoR1Dataset:
    file = write_json(root / "train.json", [good_row(path=path)])
    if on_bad_sample == "raise":
        return VideoR1Dataset(file, on_bad_sample="raise")
    return load_quietly(file)


@pytest.mark.parametrize(
    "escape",
    [
        "../outside.mp4",
        "./videos/../../outside.mp4",
        "ABSOLUTE_OUTSIDE",
        "./videos/link.mp4",
        "./linked_dir/outside.mp4",
    ],
)
def test_paths_escaping_the_root_are_rejected(rooted, escape):
    outside = rooted.parent / "outside.mp4"
    if escape == "ABSOLUTE_OUTSIDE":
        escape = str(outside)
    os.symlink(outside, rooted / "videos" / "link.mp4")
    os.symlink(rooted.parent, rooted / "linked_dir")

    dataset = _load_single(rooted, escape)
    assert len(dataset) == 0
    assert dataset.skipped_rows[0].field == "path"
    assert "outside the data root" in dataset.skipped_rows[0].reason
    with pytest.raises(DatasetError, match=r"index 0: field 'path': .*outside the data root"):
        _load_single(rooted, escape, on_bad_sample="raise")


@pytest.mark.parametrize(
    "inside",
    ["./videos/inside.mp4", "videos/inside.mp4", "ABSOLUTE_INSIDE", "./videos/in_link.mp4"],
)
def test_paths_inside_the_root_are_accepted(rooted, inside):
    if inside == "ABSOLUTE_INSIDE":
        inside = str(rooted / "videos" / "inside.mp4")
    os.symlink(rooted / "videos" / "inside.mp4", rooted / "videos" / "in_link.mp4")
    dataset = _load_single(rooted, inside, on_bad_sample="raise")
    assert dataset[0].path == (rooted / "videos" / "inside.mp4").resolve()


# ----------------------------------------------------------------------------- decoding


@pytest.fixture
def media_dataset_file(tmp_path):
    """Rows: a good video, a missing video, a corrupt video, a good image."""
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "good.mp4", 48, fps=24)
    write_random_bytes(tmp_path / "videos" / "corrupt.mp4")
    from PIL import Image

    Image.new("RGB", (32, 24), (9, 99, 199)).save(tmp_path / "picture.png")
    rows = [
        good_row(path="./videos/good.mp4"),
        good_row(path="./videos/missing.mp4"),
        good_row(path="./videos/corrupt.mp4"),
        good_row(path="./picture.png", data_type="image", problem_type="OCR", options=[]),
    ]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def test_decode_skips_and_counts_unreadable_media(media_dataset_file):
    dataset = VideoR1Dataset(media_dataset_file, max_frames=4)
    assert len(dataset) == 4  # media problems are not visible at load time

    good = dataset.decode(0)
    assert isinstance(good, MediaSample) and isinstance(good.media, DecodedVideo)
    assert good.media.num_frames == 4 and good.sample is dataset[0]

    with pytest.warns(BadSampleWarning) as record:
        results = [dataset.decode(1), dataset.decode(2)]
    assert results == [None, None]
    missing, corrupt = (str(w.message) for w in record)
    assert missing.startswith(f"{media_dataset_file} line 2: field 'path': unreadable video: ")
    assert "missing.mp4: no such file" in missing
    assert corrupt.startswith(f"{media_dataset_file} line 3: field 'path': unreadable video: ")
    assert "corrupt.mp4" in corrupt

    assert dataset.num_skipped_media == 2
    assert [(s.row_id, s.path.name) for s in dataset.skipped] == [
        (2, "missing.mp4"),
        (3, "corrupt.mp4"),
    ]
    assert all(isinstance(s, SkippedMedia) and s.reason for s in dataset.skipped)
    row_id, path, reason = dataset.skipped[0]  # unpacks as (row_id, path, reason)
    assert row_id == 2 and path == dataset[1].path and "no such file" in reason

    image = dataset.decode(3)
    assert image is not None and image.media[:, 0, 0].tolist() == [9, 99, 199]
    assert dataset.summary() == (
        f"loaded 4 rows from {media_dataset_file}; skipped 0 malformed rows; "
        "skipped 2 unreadable media"
    )


def test_iter_decoded_yields_only_readable_media(media_dataset_file):
    dataset = load_quietly(media_dataset_file, max_frames=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadSampleWarning)
        items = list(dataset.iter_decoded())
    assert [item.sample.row_id for item in items] == [1, 4]
    assert dataset.num_skipped_media == 2


def test_decode_raises_under_raise_mode(media_dataset_file):
    dataset = VideoR1Dataset(media_dataset_file, on_bad_sample="raise", max_frames=4)
    assert dataset.decode(0) is not None
    with pytest.raises(
        DatasetError, match=r"line 3: field 'path': unreadable video: .*corrupt\.mp4"
    ):
        dataset.decode(2)


def test_load_media_for_both_data_types(media_dataset_file):
    dataset = VideoR1Dataset(media_dataset_file)
    video = load_media(dataset[0], fps=2.0, min_frames=4, max_frames=4)
    assert isinstance(video, DecodedVideo) and video.frame_indices == [6, 18, 30, 42]
    image = load_media(dataset[3])
    assert isinstance(image, torch.Tensor) and tuple(image.shape) == (3, 24, 32)
