"""The rewards on hand-made completions: every problem type, the format, loading, combining."""

import math
import warnings

import pytest
import torch

from videoktr.rewards import (
    PROBLEM_TYPES,
    REWARD_FUNCTIONS,
    InvalidRowError,
    accuracy_reward,
    compute_rewards,
    extract_answer,
    format_reward,
    load_reward_function,
)

OPTIONS = ["A. red", "B. blue", "C. green", "D. Vitamin C."]


def row(problem_type, solution, options=None):
    return {
        "problem": "q",
        "problem_type": problem_type,
        "options": options or [],
        "solution": solution,
        "path": "./clip.mp4",
        "data_type": "video",
    }


def answered(text):
    return f"<think>let me think</think><answer>{text}</answer>"


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


# -------------------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    "completion",
    [
        "<think>reasoning</think><answer>B</answer>",
        "<think>reasoning</think>\n\n  <answer>B</answer>",
        "<think>line 1\nline 2</think><answer>multi\nline</answer>",
        "<think></think><answer></answer>",
        # Video-R1's regex lets the contents hold tags:
        "<think><think>a</think></think><answer>b</answer>",
        "<think>a</think><answer>b</answer><answer>c</answer>",
    ],
)
def test_format_accepts(completion):
    assert format_reward(completion) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        " <think>a</think><answer>b</answer>",  # leading whitespace
        "<think>a</think><answer>b</answer>\n",  # trailing newline
        "<answer>b</answer>",  # no think
        "<think>a</think>",  # no answer
        "<think>a <answer>b</answer></think>",  # answer only inside the think block
        "<answer>b</answer><think>a</think>",  # wrong order
        "<think>a</think> so <answer>b</answer>",  # text between the blocks
        "<think>a</think><answer>b</answer> done",  # text after the answer
        "<think>a<answer>b</answer>",  # think never closed
        "<THINK>a</THINK><ANSWER>b</ANSWER>",
        "",
        None,
    ],
)
def test_format_rejects(completion):
    assert format_reward(completion) == 0.0


def test_builtin_format_takes_and_ignores_a_row():
    assert REWARD_FUNCTIONS["format"]("<think>a</think><answer>b</answer>", row("OCR", "x")) == 1.0
    assert REWARD_FUNCTIONS["format"]("<answer>b</answer>", None) == 0.0
    assert set(REWARD_FUNCTIONS) == {"accuracy", "format"}
    assert REWARD_FUNCTIONS["accuracy"] is accuracy_reward


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


# ------------------------------------------------------------------------------------- loading


def write_module(tmp_path, monkeypatch, name, source):
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_load_builtin():
    assert load_reward_function("accuracy") is accuracy_reward
    assert load_reward_function("format")("<think>a</think><answer>b</answer>", {}) == 1.0


def test_load_module_function(tmp_path, monkeypatch):
    write_module(
        tmp_path,
        monkeypatch,
        "user_rewards_ok",
        "def length_penalty(completion, row):\n    return -len(completion) / 100\n"
        "class Scorers:\n    @staticmethod\n    def one(completion, row):\n        return 1.0\n",
    )
    assert load_reward_function("user_rewards_ok:length_penalty")("x" * 50, {}) == -0.5
    assert load_reward_function("user_rewards_ok:Scorers.one")("x", {}) == 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:f", r"'no_such_module_xyz:f'.*no module named 'no_such_module_xyz'"),
        ("user_rewards_err:missing", r"'user_rewards_err:missing'.*has no attribute 'missing'"),
        ("user_rewards_err:Holder.nope", r"'user_rewards_err.Holder' has no attribute 'nope'"),
        (
            "user_rewards_err:THRESHOLD",
            r"'user_rewards_err:THRESHOLD' is not callable: it is a float",
        ),
        (
            "user_rewards_broken:f",
            r"'user_rewards_broken:f'.*importing 'user_rewards_broken' raised",
        ),
        ("user_rewards_dep:f", r"'user_rewards_dep:f'.*importing 'user_rewards_dep' failed"),
        ("accuracyy", r"unknown reward function 'accuracyy'.*'accuracy', 'format'"),
        (":f", r"unknown reward function ':f'"),
        ("user_rewards_err:", r"unknown reward function 'user_rewards_err:'"),
        ("", r"non-empty string"),
        (None, r"non-empty string"),
    ],
)
def test_load_errors_name_the_spec(tmp_path, monkeypatch, spec, message):
    write_module(
        tmp_path, monkeypatch, "user_rewards_err", "THRESHOLD = 0.5\nclass Holder:\n    pass\n"
    )
    write_module(tmp_path, monkeypatch, "user_rewards_broken", "raise RuntimeError('boom')\n")
    write_module(tmp_path, monkeypatch, "user_rewards_dep", "import missing_dependency_xyz\n")
    with pytest.raises(ValueError, match=message):
        load_reward_function(spec)


# ----------------------------------------------------------------------------------- combining


def test_compute_rewards_weighted_sum():
    completions = [
        "<think>a</think><answer>B</answer>",  # right, well formed
        "<answer>B</answer>",  # right, no think
        "<think>a</think><answer>A</answer>",  # wrong, well formed
    ]
    rows = [row("multiple choice", "<answer>B</answer>", OPTIONS)] * 3
    total, parts = compute_rewards(completions, rows, ["accuracy", "format"], weights=[1.0, 0.5])
    assert list(parts) == ["accuracy", "format"]
    assert torch.equal(parts["accuracy"], torch.tensor([1.0, 1.0, 0.0]))
    assert torch.equal(parts["format"], torch.tensor([1.0, 0.0, 1.0]))
    assert torch.equal(total, torch.tensor([1.5, 1.0, 0.5]))
    assert total.dtype == parts["accuracy"].dtype == torch.float32

    total, _ = compute_rewards(completions, rows, ["accuracy", "format"])  # default weights 1.0
    assert torch.equal(total, torch.tensor([2.0, 1.0, 1.0]))
    total, _ = compute_rewards(
        completions, rows, {"acc": accuracy_reward, "fmt": "format"}, {"fmt": 2.0}
    )
    assert torch.equal(total, torch.tensor([3.0, 1.0, 2.0]))


def test_compute_rewards_module_spec(tmp_path, monkeypatch):
    write_module(
        tmp_path, monkeypatch, "user_rewards_len", "def short(c, row):\n    return len(c) < 5\n"
    )
    total, parts = compute_rewards(["abc", "abcdef"], [{}, {}], ["user_rewards_len:short"], [2.0])
    assert torch.equal(parts["user_rewards_len:short"], torch.tensor([1.0, 0.0]))
    assert torch.equal(total, torch.tensor([2.0, 0.0]))


def test_raising_user_function_scores_zero_and_warns_once():
    def fragile(completion, row):
        if "bad" in completion:
            raise KeyError("missing_field")
        return 0.25

    completions = ["good", "bad", "bad again", "good"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        total, parts = compute_rewards(
            completions, [{}] * 4, {"fragile": fragile, "format": "format"}
        )
    assert torch.equal(parts["fragile"], torch.tensor([0.25, 0.0, 0.0, 0.25]))
    assert torch.equal(total, parts["fragile"])  # format is 0 everywhere
    assert len(caught) == 1
    message = str(caught[0].message)
    assert caught[0].category is RuntimeWarning
    assert (
        "'fragile'" in message
        and "2 of 4" in message
        and "KeyError" in message
        and "missing_field" in message
    )


def test_non_finite_or_non_numeric_scores_count_as_failures():
    values = iter([math.nan, "high", 0.5])
    with pytest.warns(RuntimeWarning, match=r"'odd' failed on 2 of 3"):
        _, parts = compute_rewards(["a", "b", "c"], [{}] * 3, {"odd": lambda c, r: next(values)})
    assert torch.equal(parts["odd"], torch.tensor([0.0, 0.0, 0.5]))


def test_invalid_row_propagates_through_compute_rewards():
    with pytest.raises(InvalidRowError, match="unknown problem_type 'essay'"):
        compute_rewards([answered("x")], [row("essay", "x")], ["accuracy"])


def test_compute_rewards_argument_errors():
    rows = [row("OCR", "a")]
    with pytest.raises(ValueError, match="1 completions but 2 rows"):
        compute_rewards(["a"], rows * 2, ["format"])
    with pytest.raises(ValueError, match="2 weights for 1 reward functions"):
        compute_rewards(["a"], rows, ["format"], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown reward functions \\['acc'\\]"):
        compute_rewards(["a"], rows, ["format"], {"acc": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        compute_rewards(["a"], rows, ["format"], [math.inf])
    with pytest.raises(ValueError, match="listed twice"):
        compute_rewards(["a"], rows, ["format", "format"])
    with pytest.raises(TypeError, match="not the string 'format'"):
        compute_rewards(["a"], rows, "format")
    with pytest.raises(ValueError, match="'nope:f'"):
        compute_rewards(["a"], rows, ["nope:f"])


def test_compute_rewards_on_no_completions():
    total, parts = compute_rewards([], [], ["accuracy", "format"])
    assert total.shape == (0,) and parts["format"].shape == (0,)
