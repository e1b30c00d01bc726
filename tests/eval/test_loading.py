"""Loading official annotation files: the real Video-Holmes examples and small files written in
each other benchmark's official format; malformed files fail with file, row and field named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from videoktr.eval import BENCHMARKS, AnnotationError, get_benchmark, score_output
from videoktr.eval.benchmarks.video_holmes import QUESTION_TYPES

# ----------------------------------------------------------------------------- Video-Holmes


def test_real_video_holmes_examples_load(holmes_examples):
    items = get_benchmark("video_holmes").load_items(holmes_examples)
    assert len(items) == 16
    assert len({item.id for item in items}) == 16
    assert items[0].id == "RSmjqss0XKQ_1" and items[8].id == "dGS48Kcax5k_1"
    types = Counter(item.breakdown["question_type"] for item in items)
    assert types == {"SR": 2, "IMC": 2, "TCI": 2, "TA": 2, "MHR": 2, "PAR": 4, "CTI": 2}
    assert set(types) == set(QUESTION_TYPES)
    assert [item.answer for item in items[:8]] == ["A", "B", "C", "A", "B", "A", "C", "F"]
    assert items[0].video == holmes_examples / "videos" / "RSmjqss0XKQ.mp4"
    assert items[0].row["Explanation"].startswith("The woman in blue")
    assert "A: Cleaners, B: Colleagues from the same department" in items[0].prompt


def test_video_holmes_prefers_the_official_test_file(tmp_path, holmes_examples):
    rows = json.loads((holmes_examples / "RSmjqss0XKQ.json").read_text())
    (tmp_path / "test_Video-Holmes.json").write_text(json.dumps(rows[:3]))
    (tmp_path / "other.json").write_text("not json at all")  # ignored: the official file exists
    items = get_benchmark("video_holmes").load_items(tmp_path)
    assert [item.id for item in items] == ["RSmjqss0XKQ_1", "RSmjqss0XKQ_2", "RSmjqss0XKQ_3"]
    single = get_benchmark("video_holmes").load_items(tmp_path / "test_Video-Holmes.json")
    assert single[0].video == tmp_path / "videos" / "RSmjqss0XKQ.mp4"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda row: row.pop("Answer"), r"index 1: field 'Answer' is missing"),
        (
            lambda row: row.update({"Question Type": "XYZ"}),
            r"index 1: field 'Question Type' is 'XYZ'",
        ),
        (
            lambda row: row.update({"Answer": "G"}),
            r"index 1: field 'Answer' is 'G', not one of the options",
        ),
        (
            lambda row: row.update({"Options": ["a", "b"]}),
            r"index 1: field 'Options' must be an object",
        ),
        (lambda row: row.update({"video ID": ""}), r"index 1: field 'video ID' must not be empty"),
    ],
)
def test_video_holmes_malformed_rows_name_file_row_and_field(
    tmp_path, holmes_examples, change, message
):
    rows = json.loads((holmes_examples / "RSmjqss0XKQ.json").read_text())
    change(rows[1])
    (tmp_path / "questions.json").write_text(json.dumps(rows))
    with pytest.raises(AnnotationError, match=r"questions\.json " + message):
        get_benchmark("video_holmes").load_items(tmp_path)


def test_invalid_json_and_empty_folder(tmp_path):
    with pytest.raises(AnnotationError, match="no annotation files"):
        get_benchmark("video_holmes").load_items(tmp_path)
    (tmp_path / "broken.json").write_text('[{"video ID": ')
    with pytest.raises(AnnotationError, match=r"broken\.json: invalid JSON at line 1"):
        get_benchmark("video_holmes").load_items(tmp_path)
    with pytest.raises(AnnotationError, match="no such data directory"):
        get_benchmark("video_holmes").load_items(tmp_path / "absent")


# ----------------------------------------------------------------------------- Video-MME


def test_videomme_official_and_flat_formats(tmp_path):
    official = [
        {
            "video_id": "001",
            "duration_category": "short",
            "video_category": "Knowledge",
            "video_subcategory": "Humanity & History",
            "url": "https://www.youtube.com/watch?v=fFjv93ACGo8",
            "questions": [
                {
                    "question_id": "001-1",
                    "task_type": "Object Reasoning",
                    "question": "Q1?",
                    "choices": ["A. a.", "B. b.", "C. c.", "D. d."],
                    "answer": "A",
                },
                {
                    "question_id": "001-2",
                    "task_type": "Attribute Perception",
                    "question": "Q2?",
                    "choices": ["A. a.", "B. b.", "C. c.", "D. d."],
                    "answer": "D",
                },
            ],
        }
    ]
    flat = {
        "video_id": "601",
        "duration": "long",
        "domain": "Knowledge",
        "sub_category": "Law",
        "url": "https://www.youtube.com/watch?v=zzz",
        "videoID": "abcDEF12345",
        "question_id": "601-1",
        "task_type": "Counting Problem",
        "question": "Q3?",
        "options": ["A. 1", "B. 2", "C. 3", "D. 4"],
        "answer": "B",
    }
    (tmp_path / "a_official.json").write_text(json.dumps(official))
    (tmp_path / "b_flat.jsonl").write_text(json.dumps(flat) + "\n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "fFjv93ACGo8.mp4").write_bytes(b"x")
    items = get_benchmark("videomme").load_items(tmp_path)
    assert [i.id for i in items] == ["001-1", "001-2", "601-1"]
    assert [i.breakdown["duration"] for i in items] == ["short", "short", "long"]
    assert items[0].video == tmp_path / "videos" / "fFjv93ACGo8.mp4"  # found by the URL's id
    assert items[2].video == tmp_path / "videos" / "abcDEF12345.mp4"  # videoID, though missing
    assert (
        items[0].row["options"] == ["A. a.", "B. b.", "C. c.", "D. d."] and items[1].answer == "D"
    )
    assert items[2].prompt.endswith("Q3?\nA. 1\nB. 2\nC. 3\nD. 4\nThe best answer is:")

    official[0]["duration_category"] = "very long"
    (tmp_path / "a_official.json").write_text(json.dumps(official))
    with pytest.raises(
        AnnotationError, match=r"a_official\.json index 0 question 0: field 'duration_category'"
    ):
        get_benchmark("videomme").load_items(tmp_path)


# ----------------------------------------------------------------------------- MMVU


def test_mmvu_loads_multiple_choice_rows_only(tmp_path):
    rows = [
        {
            "id": "validation_0",
            "video": "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/videos/Art/0.mp4",
            "question_type": "open-ended",
            "metadata": {"subject": "Art"},
            "question": "Which technique?",
            "choices": {"A": "", "B": "", "C": "", "D": "", "E": ""},
            "answer": "Dolly Zoom",
        },
        {
            "id": "validation_1",
            "video": "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/videos/Chemistry/0.mp4",
            "question_type": "multiple-choice",
            "metadata": {"subject": "Chemistry"},
            "question": "How many grams?",
            "choices": {"A": "10.0", "B": "5.0", "C": "12.0", "D": "15.0", "E": "20.0"},
            "answer": "A",
        },
    ]
    (tmp_path / "validation.json").write_text(json.dumps(rows))
    items = get_benchmark("mmvu").load_items(tmp_path)
    assert [i.id for i in items] == ["validation_1"]
    assert items[0].video == tmp_path / "videos" / "Chemistry" / "0.mp4"
    assert items[0].breakdown == {"discipline": "Chemistry"}
    rows[1]["answer"] = "F"
    (tmp_path / "validation.json").write_text(json.dumps(rows))
    with pytest.raises(AnnotationError, match=r"validation\.json index 1: field 'answer' is 'F'"):
        get_benchmark("mmvu").load_items(tmp_path)


# ----------------------------------------------------------------------------- TempCompass


def test_tempcompass_question_files(tmp_path):
    questions = tmp_path / "questions"
    questions.mkdir()
    (questions / "multi-choice.json").write_text(
        json.dumps(
            {
                "1034419625": {
                    "action": [
                        {
                            "question": "What is he doing?\nA. dunking\nB. dribbling",
                            "answer": "A. dunking",
                        }
                    ],
                    "direction": [
                        {"question": "Which way?\nA. left\nB. right", "answer": "B. right"}
                    ],
                },
            }
        )
    )
    (questions / "yes_no.json").write_text(
        json.dumps(
            {
                "1034419625_reverse": {
                    "direction": [{"question": "Is he moving left?", "answer": "yes"}]
                },
            }
        )
    )
    (questions / "caption_matching.json").write_text(
        json.dumps(
            {
                "1034419625": {
                    "speed": [
                        {
                            "question": "Which caption?\nCaption A: fast.\nCaption B: slow.",
                            "answer": "Caption B: slow.",
                        }
                    ]
                },
            }
        )
    )
    items = get_benchmark("tempcompass").load_items(tmp_path)
    assert [i.id for i in items] == [
        "multi-choice/1034419625/action/0",
        "multi-choice/1034419625/direction/0",
        "yes_no/1034419625_reverse/direction/0",
        "caption_matching/1034419625/speed/0",
    ]
    assert items[2].video == tmp_path / "videos" / "1034419625_reverse.mp4"
    assert (
        items[0].prompt
        == "What is he doing?\nA. dunking\nB. dribbling\nPlease directly give the best option:"
    )
    assert items[2].prompt == "Is he moving left?\nPlease answer yes or no:"
    assert items[3].breakdown == {"dimension": "speed", "task_type": "caption_matching"}

    (questions / "yes_no.json").write_text(
        json.dumps({"x": {"direction": [{"question": "Q?", "answer": "maybe"}]}})
    )
    with pytest.raises(
        AnnotationError, match=r"yes_no\.json video 'x' dimension 'direction' \[0\]: field 'answer'"
    ):
        get_benchmark("tempcompass").load_items(tmp_path)


# ----------------------------------------------------------------------------- VideoMMMU


def test_videommmu_track_files(tmp_path):
    def row(i, track_type="multiple-choice"):
        return {
            "id": f"validation_Art_Theory_{i}",
            "link_selected": "https://youtu.be/x",
            "question": f"Q{i}?",
            "options": ["one", "two", "three"] if track_type == "multiple-choice" else [],
            "answer": "B" if track_type == "multiple-choice" else "12",
            "question_type": track_type,
        }

    (tmp_path / "perception_video.json").write_text(json.dumps({"Perception": {"0": row(1)}}))
    (tmp_path / "adaptation_video.json").write_text(
        json.dumps({"Adaptation": {"0": row(1), "1": row(2, "open")}})
    )
    (tmp_path / "Art").mkdir()
    (tmp_path / "Art" / "validation_Art_Theory_1.mp4").write_bytes(b"x")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "validation_Art_Theory_2.mp4").write_bytes(b"x")
    items = get_benchmark("videommmu").load_items(tmp_path)
    assert [i.id for i in items] == [
        "Adaptation/validation_Art_Theory_1",
        "Adaptation/validation_Art_Theory_2",
        "Perception/validation_Art_Theory_1",
    ]
    assert items[0].video == tmp_path / "Art" / "validation_Art_Theory_1.mp4"
    assert items[1].video == tmp_path / "videos" / "validation_Art_Theory_2.mp4"
    assert items[0].breakdown == {"track": "Adaptation", "discipline": "Art"}
    assert items[0].prompt == (
        "You should watch and learn the video content. Then apply what you learned to answer the following "
        "multi-choice question. The image for this question is at the end of the video.\nQ1?\nA. one\nB. two\nC. three"
    )
    assert items[1].prompt.endswith(
        "answer the following open-ended question. The image for this question is at "
        "the end of the video.\nQ2?"
    )
    assert (
        items[2].prompt
        == "Q1?\nA. one\nB. two\nC. three\nPlease ignore the Quiz question in last frame of the video."
    )


def test_videommmu_rows_as_the_official_data_ships_them(tmp_path):
    """Perception and Comprehension rows have no question_type; an Adaptation row may hold null."""
    untyped = {"id": "dev_Biology_3", "question": "How many carbons?", "options": ["3, 3", "3, 4"], "answer": "B"}
    (tmp_path / "perception_video.json").write_text(json.dumps({"Perception": {"0": untyped}}))
    (tmp_path / "adaptation_video.json").write_text(
        json.dumps({"Adaptation": {"0": {**untyped, "id": "dev_Biology_4", "question_type": None}}}))
    items = get_benchmark("videommmu").load_items(tmp_path)
    assert [item.id for item in items] == ["Adaptation/dev_Biology_4", "Perception/dev_Biology_3"]
    perception = items[1]
    assert perception.prompt.startswith("How many carbons?\nA. 3, 3\nB. 3, 4")
    assert score_output("videommmu", perception.row, "B") == 1.0
    assert score_output("videommmu", perception.row, "(B)") == 0.0  # the open rule, as lmms-eval scores it


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_rows_and_errors(synthetic_dir):
    items = get_benchmark("synthetic").load_items(synthetic_dir)
    assert [i.id for i in items] == ["q0", "q1", "q2", "q3", "q_missing"]
    assert [i.breakdown["kind"] for i in items] == ["count", "order", "count", "order", "count"]
    assert items[0].video == (synthetic_dir / "videos" / "clip0.mp4").resolve()
    assert "<think>" in items[0].prompt and "A. circle" in items[0].prompt
    assert items[2].answer == "B"

    rows = [json.loads(line) for line in (synthetic_dir / "test.jsonl").read_text().splitlines()]
    rows[1]["problem_type"] = "essay"
    (synthetic_dir / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(AnnotationError, match=r"test\.jsonl line 2: field 'problem_type'"):
        get_benchmark("synthetic").load_items(synthetic_dir)
    rows[1]["problem_type"] = "multiple choice"
    rows[1]["id"] = "q0"
    (synthetic_dir / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(AnnotationError, match="'q0' occurs twice"):
        get_benchmark("synthetic").load_items(synthetic_dir)


def test_synthetic_ids_default_to_row_positions(tmp_path):
    rows = [
        {
            "problem": "Q?",
            "problem_type": "multiple choice",
            "options": ["A. x", "B. y"],
            "solution": "<answer>A</answer>",
            "path": "./v.mp4",
            "data_type": "video",
        }
    ] * 2
    file = tmp_path / "eval_set.json"
    file.write_text(json.dumps(rows))
    items = get_benchmark("synthetic").load_items(Path(file))
    assert [i.id for i in items] == ["index 0", "index 1"]
    assert items[0].breakdown == {"kind": "unspecified"}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_module_offers_the_same_surface(name):
    module = BENCHMARKS[name]
    assert module.NAME == name and module.PARSERS[:2] == ("official", "strict")
    assert module.BREAKDOWN_FIELDS and set(module.BREAKDOWN_ORDER) <= set(module.BREAKDOWN_FIELDS)
    assert module.SCORER_NOTE.startswith("official")
    for function in ("load_items", "build_prompt", "judge"):
        assert callable(getattr(module, function))
    assert module.__doc__ and "Expected layout" in module.__doc__


def test_synthetic_build_prompt_matches_the_loaded_prompt(synthetic_dir):
    items = get_benchmark("synthetic").load_items(synthetic_dir)
    assert get_benchmark("synthetic").build_prompt(items[0].row) == items[0].prompt
