"""LLM judges: loading and retries, the official decision rules of MMVU and TempCompass applied to
a fake judge's replies, malformed replies, judge failures as error rows, resuming, stored
verdicts, the scorer named in rows and summaries, the CLI flag and a local transformers judge."""

from __future__ import annotations

import json

import pytest

from tests.data.media import write_video
from tests.eval import fixture_judges
from videoktr.cli import main
from videoktr.eval import (
    Judge,
    JudgeError,
    judge_output,
    load_judge,
    read_predictions,
    run_evaluation,
    runner,
    score_output,
    score_predictions,
)
from videoktr.eval.benchmarks import scorer_name
from videoktr.eval.judge import as_judge, local_hf_judge, prompt_text
from videoktr.eval.benchmarks.mmvu import JUDGED_SCORER_NOTE as MMVU_JUDGED_NOTE
from videoktr.eval.benchmarks.mmvu import judge_messages as mmvu_messages
from videoktr.eval.benchmarks.mmvu import parse_judge_reply as parse_mmvu
from videoktr.eval.benchmarks.tempcompass import parse_judge_reply as parse_tempcompass

MMVU_JUDGE = "tests.eval.fixture_judges:mmvu_judge"
TC_JUDGE = "tests.eval.fixture_judges:tempcompass_judge"
OUTAGE_JUDGE = "tests.eval.fixture_judges:outage_judge"

MMVU_ROW = {
    "id": "validation_1",
    "question_type": "multiple-choice",
    "question": "How many grams?",
    "choices": {"A": "10.0", "B": "5.0", "C": "12.0", "D": "15.0", "E": "20.0"},
    "answer": "A",
    "metadata": {"subject": "Chemistry"},
}
MC_ROW = {
    "task_type": "multi-choice",
    "question": "What is the man doing?\nA. dunking\nB. dribbling\nC. passing",
    "answer": "B. dribbling",
    "dimension": "action",
}
YN_ROW = {"task_type": "yes_no", "question": "Is the man dribbling?", "answer": "no"}
CM_ROW = {
    "task_type": "caption_matching",
    "question": "Which caption matches the video better?\nCaption A: The man moves right to left.\n"
    "Caption B: The man moves left to right.",
    "answer": "Caption B: The man moves left to right.",
}


@pytest.fixture(autouse=True)
def fresh_fixture_judges():
    fixture_judges.CALLS.clear()
    fixture_judges.OUTAGE = False
    yield
    fixture_judges.CALLS.clear()
    fixture_judges.OUTAGE = False


# ----------------------------------------------------------------------------- the protocol


def test_load_judge_by_spec():
    judge = load_judge(MMVU_JUDGE)
    assert judge.name == MMVU_JUDGE and judge.function is fixture_judges.mmvu_judge
    assert judge.retries == 2
    assert as_judge(MMVU_JUDGE).name == MMVU_JUDGE
    assert as_judge(judge) is judge and as_judge(None) is None
    named = as_judge(fixture_judges.tempcompass_judge)
    assert named.name == "tests.eval.fixture_judges:tempcompass_judge"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:f", r"judge 'no_such_module_xyz:f': no module named"),
        ("tests.eval.fixture_judges:missing", r"has no attribute 'missing'"),
        ("tests.eval.fixture_judges:OUTAGE", r"is not callable: it is a bool"),
        ("tests.eval.fixture_judges", r"not of the form 'module:function'"),
        ("", r"non-empty"),
    ],
)
def test_load_judge_errors_name_the_spec(spec, message):
    with pytest.raises(ValueError, match=message):
        load_judge(spec)


def test_judge_retries_exceptions_then_raises():
    calls = []

    def flaky(messages):
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("slow")
        return "Correct"

    assert Judge(flaky, "flaky", retries=2)([{"role": "user", "content": "q"}]) == "Correct"
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(JudgeError, match=r"judge flaky failed 2 time\(s\); last error: TimeoutError"):
        Judge(flaky, "flaky", retries=1)([{"role": "user", "content": "q"}])
    assert len(calls) == 2


def test_a_reply_that_is_not_text_is_an_error_at_once():
    judge = load_judge("tests.eval.fixture_judges:not_text_judge")
    with pytest.raises(JudgeError, match="returned dict, not the reply text"):
        judge([{"role": "user", "content": "q"}])
    assert fixture_judges.CALLS == ["not_text"]


def test_judge_settings_are_checked():
    with pytest.raises(ValueError, match="retries"):
        Judge(fixture_judges.mmvu_judge, "x", retries=-1)
    with pytest.raises(TypeError, match="judge must be"):
        as_judge(42)


def test_prompt_text_joins_the_messages():
    assert prompt_text([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]) == "S\n\nU"


# ----------------------------------------------------------------------------- MMVU


@pytest.mark.parametrize(
    ("reply", "parsed"),
    [
        ('{"extracted_answer": "A", "correct": true}', ("A", True)),
        ('  {"extracted_answer": "B", "correct": false}\n', ("B", False)),
        ('```json\n{"extracted_answer": "C", "correct": true}\n```', ("C", True)),
        ('```\n{"extracted_answer": "C", "correct": false}\n```', ("C", False)),
        ('{"extracted_answer": "", "correct": false, "reason": "none given"}', ("", False)),
        # not the official schema: unparseable
        ('{"extracted_answer": "A", "correct": "true"}', None),
        ('{"extracted_answer": "A", "correct": 1}', None),
        ('{"extracted_answer": "A"}', None),
        ('{"correct": true}', None),
        ('[{"extracted_answer": "A", "correct": true}]', None),
        ('The answer is A, which is correct.', None),
        ('Sure! {"extracted_answer": "A", "correct": true}', None),
        ("", None),
    ],
)
def test_mmvu_reply_parsing(reply, parsed):
    assert parse_mmvu(reply) == parsed


@pytest.mark.parametrize(
    ("output", "score", "prediction", "verdict"),
    [
        ("Step 1... Therefore, the final answer is: A", 1.0, "A", "correct"),
        ("Therefore, the final answer is: B", 0.0, "B", "incorrect"),
        ("A", 1.0, "A", "correct"),
        ("I would pick option A JUDGE:fenced", 1.0, "A", "correct"),
        # the rules would read nothing here; the judge reads A
        ("It has to be A, the ten gram one", 1.0, "A", "correct"),
        # officially the judge's "correct" decides, even against its own extracted answer
        ("Therefore, the final answer is: A JUDGE:contrary", 0.0, "A", "incorrect"),
        # a malformed reply counts as wrong and is recorded
        ("Therefore, the final answer is: A JUDGE:malformed", 0.0, "", "unparseable"),
    ],
)
def test_mmvu_official_decision_on_the_fake_judge(output, score, prediction, verdict):
    judgement = judge_output("mmvu", MMVU_ROW, output, judge=MMVU_JUDGE)
    assert (judgement.score, judgement.prediction, judgement.judge_verdict) == (
        score,
        prediction,
        verdict,
    )
    assert isinstance(judgement.judge_reply, str) and judgement.counted
    assert score_output("mmvu", MMVU_ROW, output, judge=MMVU_JUDGE) == score
    assert fixture_judges.CALLS == ["mmvu", "mmvu"]  # officially every output goes to the judge


def test_mmvu_judge_request_carries_the_row_and_the_whole_output():
    system, user = mmvu_messages(MMVU_ROW, "Long reasoning.\nTherefore, the final answer is: C")
    assert system["role"] == "system" and '"extracted_answer"' in system["content"]
    assert user["role"] == "user"
    content = user["content"]
    assert content.startswith("Question: How many grams?\n\nOptions:\nA: 10.0\nB: 5.0\n")
    assert "E: 20.0\n\nGround-truth answer: A\n\n" in content
    assert content.endswith("Model response: Long reasoning.\nTherefore, the final answer is: C")


def test_mmvu_strict_parser_and_other_benchmarks_never_ask_the_judge():
    raising = "tests.eval.fixture_judges:outage_judge"
    fixture_judges.OUTAGE = True
    assert score_output("mmvu", MMVU_ROW, "A", parser="strict", judge=raising) == 1.0
    row = {"Question": "Q?", "Options": {"A": "x", "B": "y"}, "Answer": "A"}
    assert score_output("video_holmes", row, "<answer>A</answer>", judge=raising) == 1.0
    assert fixture_judges.CALLS == []
    assert scorer_name("mmvu", "official", load_judge(MMVU_JUDGE)) == f"official (judge: {MMVU_JUDGE})"
    assert scorer_name("mmvu", "official") == "rule-based stand-in"
    assert scorer_name("tempcompass", "official") == "rule-based stand-in"
    assert scorer_name("mmvu", "strict", load_judge(MMVU_JUDGE)) == "strict parser"
    assert scorer_name("video_holmes", "official", load_judge(MMVU_JUDGE)) == "official"


def test_a_judge_that_keeps_failing_raises_from_score_output():
    fixture_judges.OUTAGE = True
    with pytest.raises(JudgeError, match="ConnectionError: judge endpoint down"):
        score_output("mmvu", MMVU_ROW, "A", judge=OUTAGE_JUDGE)
    assert fixture_judges.CALLS == ["outage"] * 3  # 1 call + 2 retries


# ----------------------------------------------------------------------------- TempCompass


@pytest.mark.parametrize(
    ("reply", "rating"),
    [
        ("Correct", 1),
        ("Correct.", 1),
        ("  Correct\n", 1),
        ("Incorrect", 0),
        ("Incorrect. The prediction says passing.", 0),
        ("Correct, although Incorrect wording", 1),  # starts with "Correct"
        ("The prediction is Correct.", 1),  # "Correct" and no "Incorrect"
        ("The prediction is Incorrect, not Correct.", 0),  # "Incorrect" anywhere else
        ("correct", None),  # case-sensitive, as officially
        ("Yes, it matches.", None),
        ("", None),
    ],
)
def test_tempcompass_rating_rule(reply, rating):
    assert parse_tempcompass(reply) == rating


@pytest.mark.parametrize(
    ("row", "output", "score", "asked"),
    [
        # matched by the rules: the judge is never asked
        (MC_ROW, "B", 1.0, False),
        (MC_ROW, "A. dunking", 0.0, False),
        (YN_ROW, "No, he is passing.", 1.0, False),
        (CM_ROW, "Caption B", 1.0, False),
        # unmatched: the official fallback asks the judge
        (MC_ROW, "(B) dribbling", 1.0, True),
        (MC_ROW, "I think he is passing", 0.0, True),
        (YN_ROW, "He is not; no dribbling.", 1.0, True),
        (CM_ROW, "I think caption B fits: the man moves left to right.", 1.0, True),
        (MC_ROW, "Hmm JUDGE:malformed", 0.0, True),
    ],
)
def test_tempcompass_rules_first_then_the_judge(row, output, score, asked):
    judgement = judge_output("tempcompass", row, output, judge=TC_JUDGE)
    assert judgement.score == score
    assert fixture_judges.CALLS == (["tempcompass"] if asked else [])
    assert (judgement.judge_reply is not None) == asked
    if asked:
        assert judgement.prediction is None
        assert judgement.judge_verdict == (
            "unparseable" if "malformed" in output else ("correct" if score else "incorrect")
        )
    # without a judge an unmatched output scores 0, as the official --disable_llm
    assert score_output("tempcompass", row, output) == (0.0 if asked else score)


def test_tempcompass_request_sends_the_output_without_end_tokens():
    judge_output("tempcompass", YN_ROW, "Maybe</s> not", judge=TC_JUDGE)
    captured = []
    judge_output("tempcompass", YN_ROW, "Maybe</s> not", judge=lambda m: captured.append(m) or "Incorrect")
    user = captured[0][1]["content"]
    assert "Yes/No Question:\nIs the man dribbling?\nGround-Truth Answer: no\n" in user
    assert user.endswith("Model Prediction: Maybe not")


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


def test_local_hf_judge_answers_from_a_local_causal_lm(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from videoktr.models.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "judge")
    tokenizer.save_pretrained(tmp_path / "judge")
    judge = local_hf_judge(tmp_path / "judge", max_new_tokens=4, device="cpu")
    messages = mmvu_messages(MMVU_ROW, "Therefore, the final answer is: A")
    reply = judge(messages)
    assert isinstance(reply, str) and reply == judge(messages)  # greedy: deterministic
    # a random model's reply is not the official JSON: it scores 0 and is recorded
    judgement = judge_output("mmvu", MMVU_ROW, "A", judge=judge)
    assert judgement.judge_verdict == "unparseable" and judgement.score == 0.0
    with pytest.raises(ValueError, match="not a local model directory"):
        local_hf_judge(tmp_path / "missing")
