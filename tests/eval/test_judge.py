"""LLM judges: loading and retries, the official decision rules of MMVU and TempCompass applied to
a fake judge's replies, malformed replies, judge failures as error rows, resuming, stored
verdicts, the scorer named in rows and summaries, the CLI flag and a local transformers judge."""

from __future__ import annotations

import pytest

from tests.eval import fixture_judges
from videoktr.eval import (
    Judge,
    JudgeError,
    judge_output,
    load_judge,
    score_output,
)
from videoktr.eval.benchmarks import scorer_name
from videoktr.eval.benchmarks.mmvu import judge_messages as mmvu_messages
from videoktr.eval.benchmarks.mmvu import parse_judge_reply as parse_mmvu
from videoktr.eval.benchmarks.tempcompass import parse_judge_reply as parse_tempcompass
from videoktr.eval.judge import as_judge, local_hf_judge, prompt_text

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


# ----------------------------------------------------------------------------- a local judge


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
