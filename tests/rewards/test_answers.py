"""The accuracy reward on hand-made completions: the answer block and every problem type's rule,
Video-R1's rules restated, malformed output against an invalid row."""

import re

import pytest

from videoktr.rewards import (
    PROBLEM_TYPES,
    InvalidRowError,
    accuracy_reward,
    extract_answer,
)

from .rows import OPTIONS, answered, row

# ---------------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>B</answer>", "B"),
        ("<think>x</think>\n<answer>\n  42 \n</answer>", "42"),
        ("<answer>A</answer> wait, no <answer>C</answer>", "C"),  # the last block wins
        ("<answer>two\nlines</answer>", "two\nlines"),
        ("<answer></answer>", ""),
        ("<answer>   </answer>", ""),
        ("<answer>A</answer> then <answer>B", "A"),  # unclosed trailing tag ignored
        ("<answer><answer>B</answer>", "B"),  # stray opening tag skipped
        ("no tags at all", None),
        ("<answer>unclosed", None),
        ("<Answer>B</Answer>", None),  # tags are case-sensitive
        ("", None),
        (None, None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def video_r1_extract_answer(text):
    """Video-R1's ``accuracy_reward`` extraction (src/r1-v/src/open_r1/grpo.py), as written there."""
    match = re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.DOTALL)
    return match.group(1).strip() if match else ""


@pytest.mark.parametrize("inside", ["B", " 42 ", "two\nlines", "", "A.</b>", "x</answe", "<think>y</think>"])
@pytest.mark.parametrize("around", [("", ""), ("<think>a</think>", " done"), ("</answer>", "</answer>")])
def test_one_opening_and_one_closing_tag_read_as_video_r1_reads_them(inside, around):
    before, after = around
    text = f"{before}<answer>{inside}</answer>{after}"
    assert extract_answer(text) == video_r1_extract_answer(text)


def test_a_stray_inner_opening_tag_is_where_we_differ_from_video_r1():
    text = "<answer><answer>1000</answer>"
    assert extract_answer(text) == "1000" and video_r1_extract_answer(text) == "<answer>1000"


# ----------------------------------------------------------------------------- multiple choice


@pytest.mark.parametrize(
    "answer",
    [
        "B",
        "b",
        "B.",
        "B)",
        "B:",
        "(B)",
        "( b )",
        "  B  ",
        "B. blue",
        "b. Blue.",
        "(B) blue",
        "B) BLUE",
        "B:  blue",
        "B.blue",
    ],
)
def test_multiple_choice_accepts_the_letter_forms(answer):
    assert (
        accuracy_reward(answered(answer), row("multiple choice", "<answer>B</answer>", OPTIONS))
        == 1.0
    )


@pytest.mark.parametrize(
    "answer",
    [
        "A",  # wrong letter
        "blue",  # option text without its label
        "B. red",  # label with another option's text
        "B blue",  # label without punctuation before the text
        "A, B",
        "A and B",
        "AB",
        "A/B",
        "A. red or B. blue",
        "(A)(B)",  # two letters
        "The answer is B",
        "Option B",
        "BB",
        "B!",
        "",
    ],
)
def test_multiple_choice_rejects(answer):
    assert (
        accuracy_reward(answered(answer), row("multiple choice", "<answer>B</answer>", OPTIONS))
        == 0.0
    )


def test_multiple_choice_option_text_with_a_letter_in_it():
    # "D. Vitamin C." names D: its own text ends in "C." but it is option D's text.
    assert accuracy_reward(answered("D. Vitamin C"), row("multiple choice", "D", OPTIONS)) == 1.0
    assert accuracy_reward(answered("C"), row("multiple choice", "D", OPTIONS)) == 0.0


def test_multiple_choice_without_options_accepts_only_the_label():
    assert accuracy_reward(answered("(B)"), row("multiple choice", "B")) == 1.0
    assert accuracy_reward(answered("B. blue"), row("multiple choice", "B")) == 0.0


def test_multiple_choice_last_answer_block_counts():
    sol = row("multiple choice", "<answer>C</answer>", OPTIONS)
    assert accuracy_reward("<answer>A</answer> hmm, actually <answer>C</answer>", sol) == 1.0
    assert accuracy_reward("<answer>C</answer> hmm, actually <answer>A</answer>", sol) == 0.0


def test_multiple_choice_solution_with_or_without_tags():
    for solution in ["<answer>B</answer>", "B", "  <answer> B </answer>\n", "b", "(B)"]:
        assert accuracy_reward(answered("B"), row("multiple choice", solution, OPTIONS)) == 1.0


def test_multiple_choice_non_letter_solution_falls_back_to_exact_string():
    assert accuracy_reward(answered("yes"), row("multiple choice", "<answer>yes</answer>")) == 1.0
    assert accuracy_reward(answered("Yes"), row("multiple choice", "<answer>yes</answer>")) == 0.0


def test_no_answer_tag_scores_zero_even_when_the_text_is_right():
    assert accuracy_reward("<think>it is B</think> B", row("multiple choice", "B", OPTIONS)) == 0.0
    assert accuracy_reward("B", row("multiple choice", "B", OPTIONS)) == 0.0


# ----------------------------------------------------------------------------------- numerical


@pytest.mark.parametrize(
    ("answer", "solution", "expected"),
    [
        ("3", "3", 1.0),
        ("3.0", "3", 0.0),  # the decimal check: one has a mark, the other not
        ("3", "3.0", 0.0),
        ("3.0", "3.00", 1.0),
        ("3.001", "3.00", 1.0),  # rounded to 2 decimals
        ("3.01", "3.00", 0.0),
        ("1,000", "1,000", 1.0),
        ("1000.0", "1,000", 1.0),  # commas removed; both carry a mark
        ("1,000", "1000", 0.0),  # as in Video-R1, a comma counts as a decimal mark
        ("-2", "-2", 1.0),
        ("-2", "2", 0.0),
        ("-1.5", "-1.50", 1.0),
        (" 42 ", "42", 1.0),
        ("42", "<answer>42</answer>", 1.0),
        ("forty-two", "42", 0.0),
        ("42 apples", "42", 0.0),
        ("$42", "42", 0.0),
        ("nan", "nan", 0.0),
        ("inf", "inf", 0.0),
    ],
)
def test_numerical(answer, solution, expected):
    assert accuracy_reward(answered(answer), row("numerical", solution)) == expected


# ----------------------------------------------------------------------------------------- OCR


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("the quick brown fox", 1.0),
        ("the quick red fox", 0.75),  # 1 substitution / 4 reference words
        ("the quick fox", 0.75),  # 1 deletion / 4
        ("the very quick brown fox", 0.75),  # 1 insertion / 4
        ("the slow red fox", 0.5),  # 2 substitutions / 4
        ("The quick brown fox", 0.75),  # case-sensitive
        ("the\nquick\t brown   fox", 1.0),  # words are runs of non-whitespace
        ("a b c d e f g h i j", 0.0),  # WER 10/4 = 2.5, clamped
    ],
)
def test_ocr_is_one_minus_word_error_rate(answer, expected):
    assert accuracy_reward(
        answered(answer), row("OCR", "<answer>the quick brown fox</answer>")
    ) == (pytest.approx(expected))


# ----------------------------------------------------------------------------------- free-form


@pytest.mark.parametrize(
    ("answer", "solution", "expected"),
    [
        ("the man opens the door", "the man opens the door", 1.0),
        ("red car", "blue boat", 0.0),
        # ROUGE-1 F1 2/3 (P 3/3, R 3/6), ROUGE-2 F1 4/7 (P 2/2, R 2/5), ROUGE-L F1 2/3 (LCS 3)
        ("the cat sat", "the cat sat on the mat", (2 / 3 + 4 / 7 + 2 / 3) / 3),
        ("Cats RUNNING quickly!", "cat run quickly", 1.0),  # lower-cased, Porter-stemmed
        ("door", "door", 2 / 3),  # one word: no bigram, ROUGE-2 is 0
        ("日本語", "日本語", 0.0),  # no [a-z0-9] token
    ],
)
def test_free_form_is_mean_rouge_f1(answer, solution, expected):
    assert accuracy_reward(answered(answer), row("free-form", solution)) == pytest.approx(expected)


# ---------------------------------------------------------------------------------- regression


@pytest.mark.parametrize(
    ("answer", "solution", "expected"),
    [
        ("10", "10", 1.0),
        ("10.0", "10", 1.0),  # no decimal check here
        ("8", "10", 0.8),
        ("12", "10", 0.8),
        ("25", "10", 0.0),  # relative error 1.5, clamped
        ("-4", "-5", 0.8),
        ("5", "-5", 0.0),
        ("900", "1,000", 0.9),
        ("0", "0", 1.0),  # zero ground truth: exact 0 scores 1
        ("0.0", "0", 1.0),
        ("0.001", "0", 0.0),  # anything else 0
        ("ten", "10", 0.0),
    ],
)
def test_regression_is_one_minus_relative_error(answer, solution, expected):
    assert accuracy_reward(answered(answer), row("regression", solution)) == pytest.approx(expected)


# --------------------------------------------------------------------- Video-R1's rules, restated


def video_r1_score(problem_type, answer, reference):
    """Video-R1's accuracy rules restated, for well-formed one-block answers (no zero truth)."""
    if problem_type == "numerical":
        if ("." in answer or "," in answer) != ("." in reference or "," in reference):
            return 0.0
        return float(
            round(float(answer.replace(",", "")), 2) == round(float(reference.replace(",", "")), 2)
        )
    if problem_type == "OCR":
        ref, hyp = reference.split(), answer.split()
        dist = list(range(len(hyp) + 1))
        for i, ref_word in enumerate(ref, 1):
            prev, dist[0] = dist[0], i
            for j, hyp_word in enumerate(hyp, 1):
                prev, dist[j] = (
                    dist[j],
                    prev if ref_word == hyp_word else 1 + min(prev, dist[j], dist[j - 1]),
                )
        return max(0.0, min(1.0, 1 - dist[-1] / max(1, len(ref))))
    gt, out = float(reference.replace(",", "")), float(answer.replace(",", ""))
    return 1 - min(1.0, (abs(out - gt) + 1e-9) / (abs(gt) + 1e-9))


@pytest.mark.parametrize(
    ("problem_type", "answer", "reference"),
    [
        ("numerical", "12", "12"),
        ("numerical", "12.5", "12.50"),
        ("numerical", "12", "12.0"),
        ("numerical", "7,5", "7.5"),
        ("numerical", "0.333", "0.33"),
        ("numerical", "-3", "3"),
        ("OCR", "STOP sign ahead", "STOP sign"),
        ("OCR", "exit 12 north", "exit 21 north"),
        ("OCR", "one two", "one two three four five"),
        ("OCR", "x y z", "a"),
        ("regression", "3.2", "4"),
        ("regression", "7", "4"),
        ("regression", "1,200", "1000"),
    ],
)
def test_agrees_with_video_r1_on_well_formed_answers(problem_type, answer, reference):
    ours = accuracy_reward(answered(answer), row(problem_type, f"<answer>{reference}</answer>"))
    assert ours == pytest.approx(video_r1_score(problem_type, answer, reference), abs=1e-8)


# -------------------------------------------------------------------------- malformed vs. invalid


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
@pytest.mark.parametrize(
    "completion",
    [
        None,
        "",
        "no tags",
        "<answer></answer>",
        "<answer>  \n </answer>",
        "<answer>",
        "<answer>\x00\ufffd</answer>",
        "<think>x</think><answer>" + "9" * 400 + "</answer>",
    ],
)
def test_malformed_output_scores_zero_and_never_raises(problem_type, completion):
    score = accuracy_reward(completion, row(problem_type, "<answer>B</answer>", OPTIONS))
    assert score == 0.0


@pytest.mark.parametrize("bad_type", ["multiple-choice", "Numerical", None, ""])
def test_unknown_problem_type_raises_naming_it_and_the_allowed_ones(bad_type):
    with pytest.raises(
        ValueError, match=r"unknown problem_type .*'multiple choice'.*'regression'"
    ) as info:
        accuracy_reward(answered("B"), row(bad_type, "B"))
    assert isinstance(info.value, InvalidRowError)
    assert repr(bad_type) in str(info.value)


def test_missing_solution_or_row_raises():
    with pytest.raises(InvalidRowError, match="solution"):
        accuracy_reward(answered("B"), {"problem_type": "multiple choice"})
    with pytest.raises(InvalidRowError, match="mapping"):
        accuracy_reward(answered("B"), None)


