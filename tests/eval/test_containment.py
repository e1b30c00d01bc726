"""No benchmark loader opens a media file outside ``--data``: a row whose video id or path leads
out (``..``, an absolute path) is refused by name, as the training loader refuses it.

Seen before the fix: a Video-Holmes row with ``"video ID": "../../OUTSIDE"`` decoded a file two
levels above ``--data``."""

import json

import pytest

from videoktr.eval import AnnotationError, get_benchmark

ESCAPE = "../../OUTSIDE"


def holmes(data):
    row = {"video ID": ESCAPE, "Question ID": 1, "Question Type": "SR", "Question": "Why?",
           "Options": {"A": "a", "B": "b"}, "Answer": "A", "Explanation": ""}
    (data / "test_Video-Holmes.json").write_text(json.dumps([row]))


def videomme(data):
    row = {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Law",
           "url": "https://www.youtube.com/watch?v=x", "videoID": ESCAPE, "question_id": "001-1",
           "task_type": "Counting Problem", "question": "Q?", "options": ["A. 1", "B. 2", "C. 3", "D. 4"],
           "answer": "B"}
    (data / "flat.jsonl").write_text(json.dumps(row) + "\n")


def videommmu(data):
    row = {"id": f"{ESCAPE}_1", "link_selected": "https://youtu.be/x", "question": "Q?", "options": ["a", "b"],
           "answer": "B", "question_type": "multiple-choice"}
    (data / "perception_video.json").write_text(json.dumps({"Perception": {"0": row}}))


def tempcompass(data):
    (data / "questions").mkdir()
    (data / "questions" / "yes_no.json").write_text(
        json.dumps({ESCAPE: {"direction": [{"question": "Left?", "answer": "yes"}]}}))


def mmvu(data):
    row = {"id": "validation_1", "video": f"videos/{ESCAPE}.mp4", "question_type": "multiple-choice",
           "metadata": {"subject": "Art"}, "question": "Q?", "choices": {"A": "1", "B": "2"}, "answer": "A"}
    (data / "validation.json").write_text(json.dumps([row]))


def synthetic(data):
    row = {"problem": "Q?", "problem_type": "multiple choice", "options": ["A. a", "B. b"],
           "solution": "<answer>A</answer>", "path": f"{ESCAPE}.mp4", "data_type": "video"}
    (data / "test.jsonl").write_text(json.dumps(row) + "\n")


WRITERS = {"video_holmes": holmes, "videomme": videomme, "videommmu": videommmu, "tempcompass": tempcompass,
           "mmvu": mmvu, "synthetic": synthetic}


@pytest.mark.parametrize("benchmark", sorted(WRITERS))
def test_a_video_outside_the_data_folder_is_refused(benchmark, tmp_path):
    data = tmp_path / "a" / "b" / "data"
    data.mkdir(parents=True)
    (tmp_path / "a" / "OUTSIDE.mp4").write_bytes(b"not for you")
    WRITERS[benchmark](data)
    with pytest.raises(ValueError, match="outside the data root") as raised:
        get_benchmark(benchmark).load_items(data)
    assert benchmark == "synthetic" or isinstance(raised.value, AnnotationError)


def test_every_benchmark_is_covered():
    from videoktr.eval import BENCHMARKS

    assert set(WRITERS) == set(BENCHMARKS)
