"""The runner end to end on a tiny model: predictions JSONL, summaries, resuming without redoing
or losing rows, error rows for missing videos, re-scoring, and a canned-output Video-Holmes run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.data.media import write_video
from videoktr.eval import (
    PredictionsFileError,
    decode_uniform,
    read_predictions,
    run_evaluation,
    run_record_path,
    runner,
    score_predictions,
    write_summary,
)

FAST = {"num_frames": 4, "max_new_tokens": 4, "progress": False}


def count_generate_calls(model, monkeypatch) -> list[int]:
    """Wrap ``model.generate``; the list gets one entry (the batch size) per call."""
    calls: list[int] = []
    original = model.generate

    def counting(*args, **kwargs):
        calls.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting)
    return calls


def test_end_to_end_on_a_tiny_model(tiny_model, synthetic_dir, tmp_path, monkeypatch):
    model, processor = tiny_model
    calls = count_generate_calls(model, monkeypatch)
    out = tmp_path / "preds.jsonl"
    summary = run_evaluation(
        model, processor, "synthetic", synthetic_dir, out, batch_size=2, **FAST
    )

    rows = read_predictions(out)
    assert [r["id"] for r in rows] == ["q0", "q1", "q2", "q3", "q_missing"]
    assert sum(calls) == 4 and len(calls) == 2  # two batches of two; the missing video is not asked
    for row in rows[:4]:
        assert isinstance(row["output"], str) and row["error"] is None
        assert row["benchmark"] == "synthetic" and row["parser"] == "official"
        assert row["kind"] in ("count", "order") and row["row"]["id"] == row["id"]
    missing = rows[4]
    assert missing["score"] == 0.0 and missing["output"] is None and missing["counted"] is True
    assert "missing.mp4" in missing["error"] and "no such file" in missing["error"]

    assert summary.count == 5 and summary.counted == 5 and summary.errors == 1
    assert summary.breakdown["kind"]["count"]["count"] == 3
    assert summary.breakdown["kind"]["order"]["count"] == 2
    assert summary.accuracy == pytest.approx(sum(r["score"] for r in rows) / 5)
    assert summary.settings["num_frames"] == 4 and summary.predictions_file == str(out)
    assert processor.tokenizer.padding_side == "right"  # restored after the left-padded batches
    table = summary.format_table()
    assert (
        "synthetic" in table
        and "overall" in table
        and "-- kind" in table
        and "video errors 1" in table
    )

    rescored = score_predictions("synthetic", out)
    assert rescored.accuracy == summary.accuracy and rescored.count == 5 and rescored.errors == 1
    assert rescored.breakdown == summary.breakdown
    from_annotations = score_predictions("synthetic", out, data_dir=synthetic_dir)
    assert from_annotations.breakdown == summary.breakdown

    written = json.loads(write_summary(summary, tmp_path / "summary.json").read_text())
    assert (
        written["count"] == 5 and written["parser"] == "official" and "kind" in written["breakdown"]
    )


def test_interrupted_run_resumes_without_redoing_or_losing_rows(
    tiny_model, synthetic_dir, tmp_path, monkeypatch
):
    model, processor = tiny_model
    calls = count_generate_calls(model, monkeypatch)
    out = tmp_path / "preds.jsonl"

    first = run_evaluation(model, processor, "synthetic", synthetic_dir, out, limit=2, **FAST)
    assert first.count == 2 and len(calls) == 2
    first_rows = read_predictions(out)
    assert [r["id"] for r in first_rows] == ["q0", "q1"]

    # a kill in the middle of a write leaves half a line behind
    with out.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "q2", "benchmark": "synthetic", "output": "<ans')

    second = run_evaluation(model, processor, "synthetic", synthetic_dir, out, **FAST)
    assert len(calls) == 4  # q2 and q3 only: q0 and q1 were not asked again
    rows = read_predictions(out)
    assert [r["id"] for r in rows] == ["q0", "q1", "q2", "q3", "q_missing"]
    assert rows[:2] == first_rows
    assert second.count == 5 and second.errors == 1

    third = run_evaluation(model, processor, "synthetic", synthetic_dir, out, **FAST)
    assert len(calls) == 4 and third.to_dict() | {"settings": None} == second.to_dict() | {
        "settings": None
    }
    assert len(out.read_text().splitlines()) == 5


def test_error_rows_are_kept_until_retried(tiny_model, synthetic_dir, tmp_path, monkeypatch):
    model, processor = tiny_model
    out = tmp_path / "preds.jsonl"
    run_evaluation(model, processor, "synthetic", synthetic_dir, out, **FAST)
    write_video(synthetic_dir / "videos" / "missing.mp4", num_frames=8, fps=8, width=64, height=64)
    calls = count_generate_calls(model, monkeypatch)

    run_evaluation(model, processor, "synthetic", synthetic_dir, out, **FAST)
    assert calls == [] and read_predictions(out)[-1]["error"] is not None

    summary = run_evaluation(
        model, processor, "synthetic", synthetic_dir, out, retry_errors=True, **FAST
    )
    assert calls == [1] and summary.errors == 0
    rows = read_predictions(out)
    assert sorted(r["id"] for r in rows) == ["q0", "q1", "q2", "q3", "q_missing"]
    assert rows[-1]["id"] == "q_missing" and rows[-1]["error"] is None


def test_a_corrupt_video_is_an_error_row(tiny_model, synthetic_dir, tmp_path):
    model, processor = tiny_model
    (synthetic_dir / "videos" / "clip1.mp4").write_bytes(b"\x00not a video" * 100)
    summary = run_evaluation(
        model, processor, "synthetic", synthetic_dir, tmp_path / "p.jsonl", **FAST
    )
    rows = {r["id"]: r for r in read_predictions(tmp_path / "p.jsonl")}
    assert "clip1.mp4" in rows["q1"]["error"] and rows["q1"]["score"] == 0.0
    assert summary.errors == 2


def test_predictions_files_that_cannot_be_resumed(tiny_model, synthetic_dir, tmp_path):
    model, processor = tiny_model
    out = tmp_path / "preds.jsonl"
    out.write_text(json.dumps({"id": "x", "benchmark": "videomme"}) + "\n")
    with pytest.raises(PredictionsFileError, match="from benchmark 'videomme', not 'synthetic'"):
        run_evaluation(model, processor, "synthetic", synthetic_dir, out, **FAST)
    out.write_text(
        '{"id": "a", "benchmark": "synthetic"}\nnot json\n{"id": "b", "benchmark": "synthetic"}\n'
    )
    with pytest.raises(PredictionsFileError, match="line 2: invalid JSON"):
        read_predictions(out)
    out.write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(PredictionsFileError, match="line 2: id 'a' already on line 1"):
        read_predictions(out)
    with pytest.raises(PredictionsFileError, match="no such predictions file"):
        score_predictions("synthetic", tmp_path / "absent.jsonl")


def test_batched_generation_matches_one_at_a_time(tiny_model, synthetic_dir, tmp_path):
    model, processor = tiny_model
    outputs = {}
    for batch_size in (1, 3):
        out = tmp_path / f"b{batch_size}.jsonl"
        run_evaluation(
            model,
            processor,
            "synthetic",
            synthetic_dir,
            out,
            batch_size=batch_size,
            temperature=0.0,
            num_frames=6,
            max_new_tokens=6,
            progress=False,
        )
        outputs[batch_size] = [r["output"] for r in read_predictions(out)]
    assert outputs[1] == outputs[3]


def test_decode_uniform_spreads_frames_over_the_whole_clip(tmp_path):
    path = write_video(tmp_path / "v.mp4", num_frames=30, fps=10, width=64, height=48)
    video = decode_uniform(path, 8)
    assert video.frame_indices == [(2 * i + 1) * 30 // 16 for i in range(8)]
    assert decode_uniform(path, 7).num_frames == 7  # odd counts are kept
    assert decode_uniform(path, 64).frame_indices == list(range(30))
    with pytest.raises(ValueError, match="num_frames"):
        decode_uniform(path, 0)


def test_canned_video_holmes_run_reports_the_seven_question_types(
    holmes_examples, tmp_path, monkeypatch
):
    data = tmp_path / "holmes"
    data.mkdir()
    for name in ("RSmjqss0XKQ.json", "dGS48Kcax5k.json"):
        shutil.copy(holmes_examples / name, data / name)
    (data / "videos").mkdir()
    write_video(data / "videos" / "RSmjqss0XKQ.mp4", num_frames=8, fps=8, width=64, height=64)
    # dGS48Kcax5k.mp4 is missing: its 8 questions become error rows

    def canned(model, processor, prompts, videos, **kwargs):
        # answer A for every question: right for RSmjqss0XKQ questions 1, 4 and 6
        return ["<think>The first option fits.</think><answer>A</answer>" for _ in prompts]

    monkeypatch.setattr(runner, "answer_batch", canned)
    out = tmp_path / "holmes.jsonl"
    summary = run_evaluation(
        object(), object(), "video_holmes", data, out, batch_size=4, progress=False
    )
    assert summary.count == 16 and summary.errors == 8
    assert summary.accuracy == pytest.approx(3 / 16)
    types = summary.breakdown["question_type"]
    assert list(types) == ["SR", "IMC", "TCI", "TA", "MHR", "PAR", "CTI"]
    assert types["SR"] == {"count": 2, "counted": 2, "correct": 1.0, "accuracy": 0.5}
    assert types["PAR"]["count"] == 4 and types["PAR"]["correct"] == 1.0
    assert score_predictions("video_holmes", out, data_dir=data).accuracy == summary.accuracy
    assert score_predictions("video_holmes", out, parser="strict").accuracy == summary.accuracy


def test_canned_videomme_run_drops_unanswered_questions(tmp_path, monkeypatch):
    data = tmp_path / "mme"
    (data / "videos").mkdir(parents=True)
    questions = [
        {
            "question_id": f"001-{i}",
            "task_type": "Counting Problem",
            "question": f"Q{i}?",
            "choices": ["A. 1", "B. 2", "C. 3", "D. 4"],
            "answer": "C",
        }
        for i in range(1, 4)
    ]
    (data / "videomme.json").write_text(
        json.dumps(
            [
                {
                    "video_id": "001",
                    "duration_category": "short",
                    "video_category": "Knowledge",
                    "video_subcategory": "Law",
                    "url": "https://www.youtube.com/watch?v=vid001",
                    "questions": questions,
                }
            ]
        )
    )
    write_video(data / "videos" / "vid001.mp4", num_frames=8, fps=8, width=64, height=64)
    answers = iter(["C", "B", "no idea"])
    monkeypatch.setattr(
        runner, "answer_batch", lambda m, p, prompts, videos, **k: [next(answers) for _ in prompts]
    )
    summary = run_evaluation(
        object(), object(), "videomme", data, tmp_path / "mme.jsonl", progress=False
    )
    assert (summary.count, summary.counted, summary.accuracy) == (3, 2, 0.5)
    assert summary.breakdown["duration"]["short"]["accuracy"] == 0.5
    assert summary.breakdown["duration"]["long"]["count"] == 0
    strict = score_predictions("videomme", tmp_path / "mme.jsonl", parser="strict")
    assert (strict.counted, strict.accuracy) == (3, pytest.approx(1 / 3))
    assert "not counted by the official aggregation 1" in summary.format_table()


def test_argument_checks(tiny_model, synthetic_dir, tmp_path):
    model, processor = tiny_model
    for bad in (
        {"num_frames": 0},
        {"batch_size": 0},
        {"top_p": 0.0},
        {"limit": -1},
        {"parser": "lenient"},
    ):
        with pytest.raises(ValueError):
            run_evaluation(
                model,
                processor,
                "synthetic",
                synthetic_dir,
                tmp_path / "p.jsonl",
                progress=False,
                **bad,
            )
    assert not (tmp_path / "p.jsonl").exists()
    assert torch.is_grad_enabled()


def test_a_resume_with_another_model_or_settings_is_refused(tiny_model, synthetic_dir, tmp_path):
    model, processor = tiny_model
    out = tmp_path / "preds.jsonl"
    run_evaluation(model, processor, "synthetic", synthetic_dir, out, limit=2, model_name="model-A", **FAST)
    record = json.loads(run_record_path(out).read_text())
    assert record["model"] == "model-A" and record["settings"]["num_frames"] == 4
    assert {row["model"] for row in read_predictions(out)} == {"model-A"}

    with pytest.raises(PredictionsFileError, match="model 'model-A' -> 'model-B'"):
        run_evaluation(model, processor, "synthetic", synthetic_dir, out, model_name="model-B", **FAST)
    with pytest.raises(PredictionsFileError, match="settings .*num_frames.: 4"):
        run_evaluation(model, processor, "synthetic", synthetic_dir, out, model_name="model-A",
                       **{**FAST, "num_frames": 8})
    assert len(read_predictions(out)) == 2  # nothing written by the refused runs

    # batch size and limit may change on a resume
    summary = run_evaluation(model, processor, "synthetic", synthetic_dir, out, model_name="model-A",
                             batch_size=2, **FAST)
    assert summary.count == 5 and summary.settings["model"] == "model-A"

    # overwrite starts over with the other model
    run_evaluation(model, processor, "synthetic", synthetic_dir, out, model_name="model-B", overwrite=True,
                   limit=1, **FAST)
    assert [row["model"] for row in read_predictions(out)] == ["model-B"]


def test_a_file_without_a_record_is_checked_by_its_rows(tiny_model, synthetic_dir, tmp_path):
    model, processor = tiny_model
    out = tmp_path / "preds.jsonl"
    run_evaluation(model, processor, "synthetic", synthetic_dir, out, limit=1, model_name="model-A", **FAST)
    run_record_path(out).unlink()  # as written by an older version
    with pytest.raises(PredictionsFileError, match="'model-A' -> 'model-B'"):
        run_evaluation(model, processor, "synthetic", synthetic_dir, out, model_name="model-B", **FAST)
