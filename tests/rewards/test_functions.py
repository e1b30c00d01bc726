"""The reward functions: the format reward, loading a function by name or spec, combining them."""

import math
import warnings

import pytest
import torch

from videoktr.rewards import (
    REWARD_FUNCTIONS,
    InvalidRowError,
    accuracy_reward,
    compute_rewards,
    format_reward,
    load_reward_function,
)

from .rows import OPTIONS, answered, row

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


HOSTILE_OUTPUTS = [
    answered("x" * 1_000_000),  # a 1 MB answer
    "<think>" + "y" * 1_000_000,  # 1 MB, tags never closed
    answered("1e309"),  # overflows a float
    answered("-1e309"),
    answered("nan"),
    answered("inf"),
    answered("٣"),  # an Arabic-Indic digit
    answered("١٢٫٥"),
    "<answer>3",  # unclosed
    "<think><answer>3</think></answer>",
    "</answer><answer>",
    "",
]


@pytest.mark.parametrize("problem_type, solution", [("numerical", "<answer>3</answer>"), ("regression", "<answer>12.5</answer>"),
                                                    ("OCR", "<answer>3</answer>"), ("free-form", "<answer>three</answer>"),
                                                    ("multiple choice", "<answer>C</answer>")])
def test_hostile_outputs_score_finite_values_without_raising(problem_type, solution):
    rows = [row(problem_type, solution, OPTIONS if problem_type == "multiple choice" else None)] * len(HOSTILE_OUTPUTS)
    total, parts = compute_rewards(HOSTILE_OUTPUTS, rows, ["accuracy", "format"])
    assert torch.isfinite(total).all() and all(torch.isfinite(values).all() for values in parts.values())
    assert ((parts["accuracy"] >= 0) & (parts["accuracy"] <= 1)).all()


def test_user_rewards_returning_none_or_raising_score_zero_with_a_warning():
    def none_reward(completion, row):
        return None

    def raising_reward(completion, row):
        raise RuntimeError("boom")

    with pytest.warns(RuntimeWarning) as caught:
        _, parts = compute_rewards(["a", "b"], [{}] * 2, {"none": none_reward, "raising": raising_reward})
    assert torch.equal(parts["none"], torch.zeros(2)) and torch.equal(parts["raising"], torch.zeros(2))
    messages = " ".join(str(w.message) for w in caught)
    assert "'none'" in messages and "'raising'" in messages and "boom" in messages
