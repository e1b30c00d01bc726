"""Judges in the runs: verdicts stored in the predictions file and reused, judge failures as error
rows that a resumed run asks again, a rule-scored file judged in place, the scorer named in rows
and summaries, and the CLI's --judge."""

from __future__ import annotations

import json

import pytest

from tests.data.media import write_video
from tests.eval import fixture_judges
from videoktr.cli import main
from videoktr.eval import read_predictions, run_evaluation, runner, score_predictions
from videoktr.eval.benchmarks.mmvu import JUDGED_SCORER_NOTE as MMVU_JUDGED_NOTE

from .test_judge import MMVU_JUDGE, MMVU_ROW, OUTAGE_JUDGE, TC_JUDGE

# ----------------------------------------------------------------------------- the runner


def canned(outputs: dict[str, str]):
    """A stand-in for ``runner.answer_batch``: the output of the question whose text the prompt has;
    counts the outputs generated."""
    asked: list[str] = []

    def generate(model, processor, prompts, videos, **kwargs):
        answers = []
        for prompt in prompts:
            question = next(q for q in outputs if q in prompt)
            asked.append(question)
            answers.append(outputs[question])
        return answers

    generate.asked = asked
    return generate


MMVU_OUTPUTS = {
    "Q1?": "Therefore, the final answer is: A",  # right
    "Q2?": "Therefore, the final answer is: C",  # wrong
    "Q3?": "It must be B, the five gram one",  # right; the rules read nothing
    "Q4?": "Therefore, the final answer is: A JUDGE:malformed",  # right, but unparseable reply
}


@pytest.fixture
def mmvu_dir(tmp_path):
    root = tmp_path / "mmvu"
    (root / "videos" / "Chemistry").mkdir(parents=True)
    write_video(root / "videos" / "Chemistry" / "1.mp4", num_frames=8, fps=8, width=64, height=64)
    rows = []
    for number, answer in zip((1, 2, 3, 4), "ABBA", strict=True):
        rows.append(
            {
                **MMVU_ROW,
                "id": f"validation_{number}",
                "question": f"Q{number}?",
                "answer": answer,
                "video": "https://huggingface.co/datasets/yale-nlp/MMVU/resolve/main/videos/"
                "Chemistry/1.mp4",
            }
        )
    (root / "validation.json").write_text(json.dumps(rows))
    return root


def test_mmvu_run_with_a_judge_records_verdicts_and_names_the_scorer(
    mmvu_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(runner, "answer_batch", canned(MMVU_OUTPUTS))
    out = tmp_path / "mmvu.jsonl"
    summary = run_evaluation(object(), object(), "mmvu", mmvu_dir, out, progress=False, judge=MMVU_JUDGE)
    scorer = f"official (judge: {MMVU_JUDGE})"
    assert summary.scorer == scorer and summary.scorer_note == MMVU_JUDGED_NOTE
    assert (summary.count, summary.errors, summary.judge_errors) == (4, 0, 0)
    assert summary.accuracy == pytest.approx(2 / 4)
    assert f"scorer: {scorer}" in summary.format_table()
    rows = read_predictions(out)
    assert [r["score"] for r in rows] == [1.0, 0.0, 1.0, 0.0]
    assert [r["judge_verdict"] for r in rows] == ["correct", "incorrect", "correct", "unparseable"]
    assert rows[3]["judge_reply"] == "The answer looks right to me." and rows[3]["error"] is None
    assert all(r["scorer"] == scorer for r in rows)
    assert fixture_judges.CALLS == ["mmvu"] * 4  # once per question: the summary reuses them

    # the same file scored without a judge: the rule-based stand-in, and the file is left alone
    before = out.read_bytes()
    stand_in = score_predictions("mmvu", out)
    assert stand_in.scorer == "rule-based stand-in" and "GPT-4o judge" in stand_in.scorer_note
    assert stand_in.accuracy == pytest.approx(2 / 4)  # Q1 and Q4 read by rules; Q3 not
    assert out.read_bytes() == before

    # re-scoring with the same judge asks it nothing new
    again = score_predictions("mmvu", out, judge=MMVU_JUDGE, progress=False)
    assert again.accuracy == summary.accuracy and again.scorer == scorer
    assert fixture_judges.CALLS == ["mmvu"] * 4


def test_a_failing_judge_gives_error_rows_and_a_resumed_run_continues(
    mmvu_dir, tmp_path, monkeypatch
):
    generate = canned(MMVU_OUTPUTS)
    monkeypatch.setattr(runner, "answer_batch", generate)
    out = tmp_path / "mmvu.jsonl"
    fixture_judges.OUTAGE = True
    first = run_evaluation(
        object(), object(), "mmvu", mmvu_dir, out, limit=2, progress=False, judge=OUTAGE_JUDGE
    )
    assert (first.count, first.errors, first.judge_errors, first.accuracy) == (2, 2, 2, 0.0)
    assert "judge errors 2" in first.format_table() and "video errors 0" in first.format_table()
    rows = read_predictions(out)
    assert len(rows) == 2 and fixture_judges.CALLS == ["outage"] * 6  # 3 attempts each
    for row in rows:  # the output is kept, the failure recorded
        assert row["output"] == MMVU_OUTPUTS[row["row"]["question"]]
        assert row["error_source"] == "judge" and "ConnectionError" in row["error"]
        assert row["score"] == 0.0 and row["counted"] is True

    # the judge is back: the run resumes, asks the model only the new questions and the judge
    # about the two stored outputs as well
    fixture_judges.OUTAGE = False
    fixture_judges.CALLS.clear()
    second = run_evaluation(object(), object(), "mmvu", mmvu_dir, out, progress=False, judge=OUTAGE_JUDGE)
    assert generate.asked == ["Q1?", "Q2?", "Q3?", "Q4?"]  # Q1, Q2 were not generated again
    assert fixture_judges.CALLS == ["mmvu"] * 4
    assert (second.count, second.errors, second.judge_errors) == (4, 0, 0)
    assert second.accuracy == pytest.approx(2 / 4)
    rows = read_predictions(out)
    assert [r["id"] for r in rows] == [f"validation_{n}" for n in (1, 2, 3, 4)]
    assert all(r["error"] is None and r["judge_verdict"] for r in rows)


def test_a_judge_error_row_scores_by_rules_without_a_judge(mmvu_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "answer_batch", canned(MMVU_OUTPUTS))
    out = tmp_path / "mmvu.jsonl"
    fixture_judges.OUTAGE = True
    run_evaluation(object(), object(), "mmvu", mmvu_dir, out, limit=1, progress=False, judge=OUTAGE_JUDGE)
    summary = score_predictions("mmvu", out)
    assert (summary.errors, summary.accuracy, summary.scorer) == (0, 1.0, "rule-based stand-in")


def test_scoring_a_rule_scored_file_with_a_judge_updates_it_in_place(
    mmvu_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(runner, "answer_batch", canned(MMVU_OUTPUTS))
    out = tmp_path / "mmvu.jsonl"
    rules = run_evaluation(object(), object(), "mmvu", mmvu_dir, out, progress=False)
    assert rules.scorer == "rule-based stand-in" and fixture_judges.CALLS == []
    assert all(r["scorer"] == "rule-based stand-in" for r in read_predictions(out))

    judged = score_predictions("mmvu", out, data_dir=mmvu_dir, judge=MMVU_JUDGE, progress=False)
    assert judged.scorer == f"official (judge: {MMVU_JUDGE})" and judged.accuracy == 0.5
    rows = read_predictions(out)
    assert [r["id"] for r in rows] == [f"validation_{n}" for n in (1, 2, 3, 4)]
    assert [r["judge_verdict"] for r in rows] == ["correct", "incorrect", "correct", "unparseable"]
    assert all(r["output"] == MMVU_OUTPUTS[r["row"]["question"]] for r in rows)
    assert fixture_judges.CALLS == ["mmvu"] * 4
    score_predictions("mmvu", out, judge=MMVU_JUDGE, progress=False)
    assert fixture_judges.CALLS == ["mmvu"] * 4  # stored verdicts are reused

    # another judge is another scorer: it judges everything again
    other = score_predictions("mmvu", out, judge=OUTAGE_JUDGE, progress=False)
    assert other.scorer == f"official (judge: {OUTAGE_JUDGE})" and len(fixture_judges.CALLS) == 8


def test_tempcompass_run_asks_the_judge_only_for_unmatched_outputs(tmp_path, monkeypatch):
    root = tmp_path / "tempcompass"
    (root / "questions").mkdir(parents=True)
    (root / "videos").mkdir()
    write_video(root / "videos" / "v1.mp4", num_frames=8, fps=8, width=64, height=64)
    questions = {
        "v1": {
            "action": [
                {"question": "What is he doing?\nA. dunking\nB. dribbling", "answer": "B. dribbling"},
                {"question": "What is she doing?\nA. running\nB. jumping", "answer": "A. running"},
                {"question": "What is it doing?\nA. flying\nB. falling", "answer": "B. falling"},
            ]
        }
    }
    (root / "questions" / "multi-choice.json").write_text(json.dumps(questions))
    outputs = {
        "What is he": "B",  # rules: right
        "What is she": "She is clearly running.",  # unmatched; judge: right
        "What is it": "(A) flying",  # unmatched; judge: wrong
    }
    monkeypatch.setattr(runner, "answer_batch", canned(outputs))
    out = tmp_path / "tc.jsonl"
    summary = run_evaluation(object(), object(), "tempcompass", root, out, progress=False, judge=TC_JUDGE)
    assert summary.accuracy == pytest.approx(2 / 3) and summary.scorer == f"official (judge: {TC_JUDGE})"
    assert fixture_judges.CALLS == ["tempcompass"] * 2
    rows = read_predictions(out)
    assert [r["judge_verdict"] for r in rows] == [None, "correct", "incorrect"]
    stand_in = score_predictions("tempcompass", out)
    assert stand_in.accuracy == pytest.approx(1 / 3) and stand_in.scorer == "rule-based stand-in"


def test_video_holmes_run_ignores_a_judge(holmes_examples, tmp_path, monkeypatch):
    data = tmp_path / "holmes"
    data.mkdir()
    (data / "RSmjqss0XKQ.json").write_text((holmes_examples / "RSmjqss0XKQ.json").read_text())
    (data / "videos").mkdir()
    write_video(data / "videos" / "RSmjqss0XKQ.mp4", num_frames=8, fps=8, width=64, height=64)
    monkeypatch.setattr(
        runner, "answer_batch", lambda m, p, prompts, videos, **k: ["<answer>A</answer>" for _ in prompts]
    )
    fixture_judges.OUTAGE = True
    summary = run_evaluation(
        object(), object(), "video_holmes", data, tmp_path / "h.jsonl", progress=False, judge=OUTAGE_JUDGE
    )
    assert summary.scorer == "official" and summary.errors == 0 and fixture_judges.CALLS == []


# ----------------------------------------------------------------------------- CLI and local judge


def test_cli_score_with_a_judge(mmvu_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "answer_batch", canned(MMVU_OUTPUTS))
    out = tmp_path / "mmvu.jsonl"
    run_evaluation(object(), object(), "mmvu", mmvu_dir, out, progress=False)
    summary_file = tmp_path / "summary.json"
    code = main(["eval", "score", "--benchmark", "mmvu", "--predictions", str(out), "--judge", MMVU_JUDGE,
                 "--judge-retries", "0", "--summary", str(summary_file)])
    assert code == 0
    assert f"scorer: official (judge: {MMVU_JUDGE})" in capsys.readouterr().out
    written = json.loads(summary_file.read_text())
    assert written["scorer"] == f"official (judge: {MMVU_JUDGE})" and written["accuracy"] == 0.5
    assert main(["eval", "score", "--benchmark", "mmvu", "--predictions", str(out)]) == 0
    assert "scorer: rule-based stand-in" in capsys.readouterr().out


def test_cli_rejects_a_bad_judge_before_loading_a_model(tmp_path, capsys):
    code = main(["eval", "run", "--benchmark", "mmvu", "--data", str(tmp_path), "--model", str(tmp_path / "nope"),
                 "--output", str(tmp_path / "p.jsonl"), "--judge", "no_such_module_xyz:judge"])
    err = capsys.readouterr().err
    assert code == 2 and "judge 'no_such_module_xyz:judge': no module named" in err
    assert "not a model directory" not in err
    code = main(["eval", "score", "--benchmark", "mmvu", "--predictions", str(tmp_path / "p.jsonl"),
                 "--judge", MMVU_JUDGE, "--judge-retries", "-1"])
    assert code == 2 and "retries" in capsys.readouterr().err


