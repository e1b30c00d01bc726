"""Each benchmark's scorer on hand-written outputs, official quirks and strict parsers included."""

from __future__ import annotations

import pytest

from videoktr.eval import (
    BENCHMARKS,
    judge_output,
    score_output,
    strict_choice,
)
from videoktr.eval.benchmarks import video_holmes, videomme

# ----------------------------------------------------------------------------- Video-Holmes

HOLMES_ROW = {
    "video ID": "RSmjqss0XKQ",
    "Question ID": 2,
    "Question Type": "IMC",
    "Question": "The man in white kicked the printer at 00:05 with what intention?",
    "Options": {
        "A": "Testing its sturdiness",
        "B": "Venting anger at the broken machine",
        "C": "Trying to activate hidden functions",
        "D": "Signaling colleagues for help",
        "E": "Warming up for physical exercise",
        "F": "Investigating suspicious noises",
    },
    "Answer": "B",
}


@pytest.mark.parametrize(
    ("output", "prediction"),
    [
        ("<think>He looks angry.</think><answer>B</answer>", "B"),
        # the last answer block wins
        ("<answer>A</answer> wait, no. <answer>B</answer>", "B"),
        ("<answer>B</answer> on reflection <answer>C</answer>", "C"),
        # no block: the whole output is searched; letters A..F are tried in order
        ("I pick E", "E"),
        ("He kicks it because he is angry, so B", "B"),
        ("A man kicks the printer; the answer is B", "A"),  # "A " wins over "B"
        ("B and A are wrong", "A"),  # alphabetical, not by position
        ("B or A", "B"),  # a final "A" has nothing beside it: "B " matches first
        ("<answer>B or A</answer>", "B"),
        # "L " / "L:" / "[L" beat a bare letter
        ("<answer>[C] Trying to activate hidden functions</answer>", "C"),
        ("<answer>Answer: D</answer>", "A"),  # the capital A of "Answer" (no "D " / "D:")
        # nested tags: the non-greedy regex starts at the first opening tag
        ("<answer><answer>B</answer>", "B"),
        # nothing names a letter
        ("<think>hmm</think><answer>no idea</answer>", "WRONG"),
        ("", "WRONG"),
    ],
)
def test_video_holmes_official_letter_rules(output, prediction):
    judgement = judge_output("video_holmes", HOLMES_ROW, output)
    assert judgement.prediction == prediction
    assert judgement.score == (1.0 if prediction == "B" else 0.0)
    assert judgement.counted


def test_video_holmes_official_quirk_false_positive_and_strict_parser():
    # A sentence starting with "Based" names B for the official rule: a correct score for an
    # output that never chose; the strict parser does not accept it.
    output = "<think>...</think><answer>Based on the clues I cannot decide</answer>"
    assert score_output("video_holmes", HOLMES_ROW, output) == 1.0
    assert score_output("video_holmes", HOLMES_ROW, output, parser="strict") == 0.0
    assert score_output("video_holmes", HOLMES_ROW, "<answer>(B)</answer>", parser="strict") == 1.0
    assert (
        score_output(
            "video_holmes",
            HOLMES_ROW,
            "<answer>B. Venting anger at the broken machine</answer>",
            parser="strict",
        )
        == 1.0
    )
    assert (
        score_output(
            "video_holmes",
            HOLMES_ROW,
            "<answer>B. Testing its sturdiness</answer>",
            parser="strict",
        )
        == 0.0
    )
    assert (
        score_output("video_holmes", HOLMES_ROW, "<answer>A or B</answer>", parser="strict") == 0.0
    )
    assert video_holmes.official_prediction("no letters here") == "WRONG"


def test_video_holmes_prompt_is_the_official_one():
    prompt = video_holmes.build_prompt(HOLMES_ROW)
    assert prompt.startswith(
        "Based on the given video, reason and answer the single-choice question."
    )
    assert (
        "between the <think> and </think> tags" in prompt
        and "<answer> and </answer> tags" in prompt
    )
    assert (
        "The question is: The man in white kicked the printer at 00:05 with what intention?. "
        in prompt
    )
    assert (
        "The options are: A: Testing its sturdiness, B: Venting anger at the broken machine, C: "
        in prompt
    )
    assert prompt.endswith("F: Investigating suspicious noises. Your answer:")


def test_unknown_parser_and_benchmark_are_errors():
    with pytest.raises(ValueError, match="unknown parser"):
        score_output("video_holmes", HOLMES_ROW, "B", parser="lenient")
    with pytest.raises(ValueError, match="unknown benchmark"):
        score_output("mvbench", HOLMES_ROW, "B")
    assert set(BENCHMARKS) == {
        "video_holmes",
        "videommmu",
        "mmvu",
        "tempcompass",
        "videomme",
        "synthetic",
    }


# ----------------------------------------------------------------------------- strict choice


@pytest.mark.parametrize(
    ("output", "letter"),
    [
        ("B", "B"),
        ("b", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("[B]", "B"),
        ("B:", "B"),
        ("**B**", "B"),
        ("<answer> B </answer>", "B"),
        ("B. blue", "B"),
        ("(B) Blue.", "B"),
        ("B. red", None),
        ("blue", None),
        ("A, B", None),
        ("The answer is B", None),
        ("G", None),
        ("", None),
        ("<answer>A</answer> then <answer>B</answer>", "B"),
    ],
)
def test_strict_choice(output, letter):
    assert strict_choice(output, {"A": "red", "B": "blue", "C": "green"}) == letter


# ----------------------------------------------------------------------------- Video-MME

MME_ROW = {
    "video_id": "001",
    "duration": "short",
    "question_id": "001-1",
    "task_type": "Object Reasoning",
    "question": "Which statement is not correct?",
    "options": ["A. Poppy.", "B. Rose.", "C. Tulip.", "D. Lily."],
    "answer": "C",
}


@pytest.mark.parametrize(
    ("output", "prediction", "score", "counted"),
    [
        ("C", "C", 1.0, True),
        ("C.", "C", 1.0, True),
        ("The best answer is C.", "C", 1.0, True),
        ("The answer is (C) Tulip.", "C", 1.0, True),
        ("A", "A", 0.0, True),
        # quirk: the first capital A-D anywhere
        ("Based on the video, C", "B", 0.0, True),
        ("<think>Both flowers appear.</think><answer>C</answer>", "B", 0.0, True),
        # quirk: "Best answer:" is not removed (a missing comma in the official list glues it
        # to "Best option:"), so its B is read
        ("Best answer: C", "B", 0.0, True),
        # no letter: dropped from the denominator, not wrong
        ("I do not know.", "", 0.0, False),
        (
            "there is no way to tell which of these flowers was shown in the clip at all",
            "",
            0.0,
            False,
        ),
    ],
)
def test_videomme_official_extraction(output, prediction, score, counted):
    judgement = judge_output("videomme", MME_ROW, output)
    assert (judgement.prediction, judgement.score, judgement.counted) == (
        prediction,
        score,
        counted,
    )


def test_videomme_strict_parser_counts_everything():
    thought = "<think>Both flowers appear.</think><answer>C</answer>"
    assert judge_output("videomme", MME_ROW, thought, parser="strict").score == 1.0
    no_answer = judge_output("videomme", MME_ROW, "I do not know.", parser="strict")
    assert (no_answer.score, no_answer.counted) == (0.0, True)
    assert score_output("videomme", MME_ROW, "C. Tulip.", parser="strict") == 1.0
    assert videomme.extract_letter("The correct option is D") == "D"


def test_videomme_prompt_is_the_official_subtitle_free_prompt():
    assert videomme.build_prompt(MME_ROW) == (
        "Select the best answer to the following multiple-choice question based on the video. "
        "Respond with only the letter (A, B, C, or D) of the correct option.\n"
        "Which statement is not correct?\nA. Poppy.\nB. Rose.\nC. Tulip.\nD. Lily.\nThe best answer is:"
    )


# ----------------------------------------------------------------------------- TempCompass

MC_ROW = {
    "task_type": "multi-choice",
    "question": "What is the man doing?\nA. dunking\nB. dribbling\nC. passing",
    "answer": "B. dribbling",
    "dimension": "action",
}
YN_ROW = {
    "task_type": "yes_no",
    "question": "Is the man dribbling?",
    "answer": "no",
    "dimension": "action",
}
CM_ROW = {
    "task_type": "caption_matching",
    "dimension": "direction",
    "question": "Which caption matches the video better?\nCaption A: The man moves right to left.\n"
    "Caption B: The man moves left to right.",
    "answer": "Caption B: The man moves left to right.",
}


@pytest.mark.parametrize(
    ("row", "output", "official", "official_2024_03", "strict"),
    [
        (MC_ROW, "B", 1.0, 1.0, 1.0),
        (MC_ROW, "B. dribbling", 1.0, 1.0, 1.0),
        (MC_ROW, "B) dribbling", 1.0, 1.0, 1.0),
        (MC_ROW, "B) passing", 1.0, 1.0, 0.0),  # official reads only the label; strict checks the text
        (MC_ROW, "B.", 1.0, 1.0, 1.0),
        (MC_ROW, "A. dunking", 0.0, 0.0, 0.0),
        (MC_ROW, "B</s>", 1.0, 1.0, 0.0),
        # HEAD strips the output; the 2024-03 scripts did not
        (MC_ROW, " B", 1.0, 0.0, 1.0),
        (MC_ROW, "B\n", 1.0, 0.0, 1.0),
        (MC_ROW, "\nB", 1.0, 0.0, 1.0),
        # "(B)" and reasoning outputs never match the rules
        (MC_ROW, "(B)", 0.0, 0.0, 1.0),
        (MC_ROW, "<think>He bounces the ball.</think><answer>B</answer>", 0.0, 0.0, 1.0),
        (YN_ROW, "No, he is passing.", 1.0, 1.0, 1.0),
        (YN_ROW, "no", 1.0, 1.0, 1.0),
        (YN_ROW, " No", 1.0, 0.0, 1.0),
        (YN_ROW, "Yes.", 0.0, 0.0, 0.0),
        # quirk: anything starting with "no" reads as no
        (YN_ROW, "Not sure.", 1.0, 1.0, 0.0),
        (YN_ROW, "None of the frames show it", 1.0, 1.0, 0.0),
        (YN_ROW, "<answer>no</answer>", 0.0, 0.0, 1.0),
        (CM_ROW, "Caption B", 1.0, 1.0, 1.0),
        (CM_ROW, "Caption B.", 1.0, 1.0, 1.0),
        (CM_ROW, "The man moves left to right.", 1.0, 1.0, 1.0),
        (CM_ROW, "Caption B: The man moves left to right.", 1.0, 1.0, 1.0),
        (CM_ROW, "Caption A", 0.0, 0.0, 0.0),
        # HEAD accepts the bare index
        (CM_ROW, "B", 1.0, 0.0, 1.0),
        (CM_ROW, "B.", 1.0, 0.0, 1.0),
        (CM_ROW, "A", 0.0, 0.0, 0.0),
        (CM_ROW, " Caption B ", 1.0, 0.0, 1.0),
        (CM_ROW, "I think caption B fits", 0.0, 0.0, 0.0),
    ],
)
def test_tempcompass_rules(row, output, official, official_2024_03, strict):
    assert score_output("tempcompass", row, output) == official
    assert score_output("tempcompass", row, output, parser="official_2024_03") == official_2024_03
    assert score_output("tempcompass", row, output, parser="strict") == strict


def test_tempcompass_infers_the_task_type():
    for row in (MC_ROW, YN_ROW, CM_ROW):
        untyped = {k: v for k, v in row.items() if k != "task_type"}
        assert BENCHMARKS["tempcompass"].task_type_of(untyped) == row["task_type"]


# ----------------------------------------------------------------------------- VideoMMMU

MMMU_MC = {
    "id": "validation_Biology_3",
    "track": "Perception",
    "question_type": "multiple-choice",
    "question": "Which colour?",
    "options": ["red", "blue", "green", "yellow"],
    "answer": "B",
}
MMMU_OPEN = {
    "id": "validation_Chemistry_13",
    "track": "Adaptation",
    "question_type": "open",
    "question": "What mass?",
    "options": [],
    "answer": "12.97",
}


@pytest.mark.parametrize(
    ("output", "prediction", "score"),
    [
        ("B", "B", 1.0),
        ("B.", "B", 1.0),  # the final "." is stripped first, then "B " matches
        ("The answer is (B).", "B", 1.0),
        ("Answer: B. blue", "B", 1.0),
        ("A: red, B: blue; I choose B:", "B", 1.0),  # colon forms, the last one wins
        ("the colour shown here is clearly blue in every frame", "B", 1.0),  # option text
        ("the colour shown is clearly purple in every frame", "No Answer Found.", 0.0),
        # quirk: "A." anywhere is the period form ("DNA."), which beats the answer block
        ("<think>It is like DNA. Obviously.</think><answer>B</answer>", "A", 0.0),
    ],
)
def test_videommmu_multiple_choice_official(output, prediction, score):
    judgement = judge_output("videommmu", MMMU_MC, output)
    assert (judgement.prediction, judgement.score, judgement.counted) == (prediction, score, True)


def test_videommmu_empty_output_is_dropped_and_strict_parser():
    empty = judge_output("videommmu", MMMU_MC, "")
    assert (empty.prediction, empty.counted) == ("API Error", False)
    assert judge_output("videommmu", MMMU_MC, "", parser="strict").counted
    assert (
        score_output(
            "videommmu",
            MMMU_MC,
            "<think>like DNA. Obviously.</think><answer>B</answer>",
            parser="strict",
        )
        == 1.0
    )


@pytest.mark.parametrize(
    ("output", "score"),
    [
        ("The mass is 12.97 g.", 1.0),
        ("So the mass = 12.970", 1.0),
        ("Roughly 13 grams are needed.", 0.0),
        ("There are 5 isomers", 0.0),
    ],
)
def test_videommmu_open_questions(output, score):
    assert score_output("videommmu", MMMU_OPEN, output) == score


def test_videommmu_open_parse_takes_the_shortest_tail():
    parse_open = BENCHMARKS["videommmu"].parse_open
    assert parse_open("So the total is 5") == [5.0]  # tails "the total is 5", "5", "is 5"
    assert parse_open("The mass is 12.97 g.") == ["12.97 g", 12.97]
    assert parse_open("") == "API Error"


# ----------------------------------------------------------------------------- MMVU

MMVU_ROW = {
    "id": "validation_1",
    "question_type": "multiple-choice",
    "question": "How many grams?",
    "choices": {"A": "10.0", "B": "5.0", "C": "12.0", "D": "15.0", "E": "20.0"},
    "answer": "A",
    "metadata": {"subject": "Chemistry"},
}


@pytest.mark.parametrize(
    ("output", "official", "strict"),
    [
        ("Step 1... Therefore, the final answer is: A", 1.0, 0.0),
        ("Therefore, the final answer is: **A**.", 1.0, 0.0),
        ("The final answer is $A$", 1.0, 0.0),
        ("First B looks right, but... Therefore, the final answer is: A", 1.0, 0.0),
        ("<think>...</think><answer>A</answer>", 1.0, 1.0),
        ("A", 1.0, 1.0),
        ("Therefore, the final answer is: B", 0.0, 0.0),
        ("The final answer is Based on nothing", 0.0, 0.0),
        ("I cannot tell.", 0.0, 0.0),
    ],
)
def test_mmvu_rule_parsers(output, official, strict):
    assert score_output("mmvu", MMVU_ROW, output) == official
    assert score_output("mmvu", MMVU_ROW, output, parser="strict") == strict


def test_mmvu_prompt_is_the_official_cot_prompt():
    prompt = BENCHMARKS["mmvu"].build_prompt(MMVU_ROW)
    assert prompt.startswith(
        "\nQuestion: How many grams?\nA: 10.0\nB: 5.0\nC: 12.0\nD: 15.0\nE: 20.0\n\n"
    )
    assert (
        "'Therefore, the final answer is: $LETTER' (without quotes), where $LETTER is one of"
        in prompt
    )


def test_tempcompass_summaries_name_the_revision_that_scored_them():
    from videoktr.eval import summarize
    from videoktr.eval.judge import as_judge

    assert "c2ec41e" in summarize("tempcompass", [], "official").scorer_note
    assert "75361fd" in summarize("tempcompass", [], "official_2024_03").scorer_note
    judged = summarize("tempcompass", [], "official_2024_03", judge=as_judge(lambda messages: "Correct"))
    assert "75361fd" in judged.scorer_note and "judge" in judged.scorer_note


# The official data's Perception and Comprehension rows carry no question_type: lmms-eval's
# videommmu task reads doc.get("question_type", "None") and scores them by its open-question rule.
MMMU_UNTYPED = {"id": "dev_Biology_3", "track": "Perception", "question": "Which colour?",
                "options": ["red", "blue", "green", "yellow"], "answer": "B"}


@pytest.mark.parametrize(
    ("output", "score"),
    [
        ("B", 1.0),
        ("b", 1.0),  # the open rule lower-cases
        ("B. blue", 1.0),
        ("Answer: B", 1.0),
        ("The answer is B.", 1.0),
        ("(B)", 0.0),  # "(b)" holds neither " b" nor "b ": a multiple-choice parser would read B
        ("The answer is (B).", 0.0),
        ("I think B is right", 0.0),  # the key tail after "is " is "right"
        ("blue", 0.0),
        ("A", 0.0),
    ],
)
def test_videommmu_rows_without_question_type_are_scored_as_open_questions(output, score):
    assert score_output("videommmu", MMMU_UNTYPED, output) == score
    assert score_output("videommmu", {**MMMU_UNTYPED, "question_type": None}, output) == score
