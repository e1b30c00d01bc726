"""The reward functions: the built-in ``accuracy`` and ``format`` rewards, loading a function
by name or ``module:function``, and scoring a group of completions with several of them."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch

from .._specs import is_callable_spec, load_callable_spec
from ..data.dataset import PROBLEM_TYPES
from .answers import SCORERS, extract_answer, reference_answer

__all__ = [
    "REWARD_FUNCTIONS",
    "InvalidRowError",
    "RewardFunction",
    "accuracy_reward",
    "compute_rewards",
    "format_reward",
    "load_reward_function",
]

RewardFunction = Callable[[str, Mapping], float]

REWARD_LIMIT = 1e6
"""The largest reward magnitude passed on; a score beyond it is clipped to it, with a warning.
Why: a finite float64 score such as ``1e39`` is ``inf`` in float32, and one infinite reward
makes the group's advantages, then the gradient, then the weights NaN."""


class InvalidRowError(ValueError):
    """The dataset row, not the model's completion, is wrong (e.g. an unknown problem_type).

    Raised by the built-in rewards and never swallowed by :func:`compute_rewards`: it is a
    programming or data error that must surface, unlike a malformed completion (scored 0.0).
    """


def accuracy_reward(completion: str, row: Mapping) -> float:
    """How well the completion's answer matches ``row["solution"]``, by ``row["problem_type"]``.

    ``a`` is :func:`extract_answer` of the completion; ``s`` is the solution's last answer
    block, or the whole stripped solution when it has no answer tags. Then::

        a is None or a == ""                  -> 0.0   (any problem type)

        "multiple choice"  letter(a) == letter(s) ? 1.0 : 0.0
        "numerical"        has_mark(a) != has_mark(s)                   ? 0.0
                           : round(num(a), 2) == round(num(s), 2)       ? 1.0 : 0.0
        "OCR"              clamp(1 - WER(s, a), 0, 1)
        "free-form"        clamp((F1_rouge1(s, a) + F1_rouge2(s, a) + F1_rougeL(s, a)) / 3, 0, 1)
        "regression"       num(s) != 0:  1 - min(1, |num(a) - num(s)| / |num(s)|)
                           num(s) == 0:  num(a) == 0 ? 1.0 : 0.0

    Each problem type's rule in full: :func:`~videoktr.rewards.answers.multiple_choice_score`,
    ``numerical_score``, ``ocr_score``, ``free_form_score``, ``regression_score``.

    Args:
        completion: the model's generated text.
        row: a dataset row with ``problem_type`` and ``solution`` (and ``options`` for
            multiple choice).

    Returns:
        A score in ``[0, 1]``. Malformed model output gives 0.0 and never raises.

    Raises:
        InvalidRowError: ``row["problem_type"]`` is missing or not one of
            :data:`PROBLEM_TYPES`, or ``row["solution"]`` is missing or not a string.

    Differs from Video-R1:

    - the answer is the *last* block, not the first (see :func:`extract_answer`);
    - multiple choice accepts the label forms of ``multiple_choice_score``, not only the identical string
      (Video-R1 scores ``"B."`` or ``"(B)"`` against ``"B"`` as 0.0);
    - every row is scored by its own ``problem_type`` (Video-R1 uses the batch's first row's);
    - a solution without answer tags is used whole (Video-R1 reads it as ``""``);
    - an empty answer scores 0.0 even against an empty OCR solution (Video-R1: 1.0);
    - regression drops Video-R1's ``+ 1e-9`` in numerator and denominator, so an exact
      answer scores exactly 1.0 and a zero ground truth is scorable (Video-R1 gives 0.0 to
      every answer there, the exact one included); elsewhere the two differ by < 1e-9/|s|;
    - ``"nan"`` and ``"inf"`` are not numbers;
    - an unknown problem type raises instead of scoring 0.0; nothing is printed.
    """
    problem_type, solution = _checked_row(row)
    answer = extract_answer(completion)
    if not answer:
        return 0.0
    return SCORERS[problem_type](answer, reference_answer(solution), row)


def _checked_row(row: object) -> tuple[str, str]:
    if not isinstance(row, Mapping):
        raise InvalidRowError(f"a reward row must be a mapping, got {type(row).__name__}")
    problem_type = row.get("problem_type")
    if problem_type not in PROBLEM_TYPES:
        allowed = ", ".join(repr(name) for name in PROBLEM_TYPES)
        raise InvalidRowError(f"unknown problem_type {problem_type!r}; expected one of {allowed}")
    solution = row.get("solution")
    if not isinstance(solution, str):
        raise InvalidRowError(
            f"row['solution'] must be a string, got {type(solution).__name__} "
            f"(problem_type {problem_type!r})"
        )
    return problem_type, solution


_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def format_reward(completion: str) -> float:
    """1.0 iff the whole completion is a think block followed by an answer block.

    ::

        format_reward(c) = 1.0  if c == "<think>" X "</think>" W "<answer>" Y "</answer>"
                                   for some strings X, Y and some whitespace W (maybe empty)
                         = 0.0  otherwise (also for non-str c)

    This is Video-R1's ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", c,
    re.DOTALL)``, unchanged:

    - nothing, not even whitespace or a newline, may precede ``<think>`` or follow the final
      ``</answer>``; tags are case-sensitive; ``X`` and ``Y`` may span lines and be empty;
    - ``X`` and ``Y`` may themselves contain tags, so a nested ``<think><think>a</think>
      </think><answer>b</answer>`` and two answer blocks ``...<answer>a</answer><answer>b
      </answer>`` still score 1.0; an answer only inside the think block scores 0.0.
    """
    if not isinstance(completion, str):
        return 0.0
    return 1.0 if _FORMAT.fullmatch(completion) else 0.0


def _format_reward_ignoring_row(completion: str, row: Mapping | None = None) -> float:
    """:func:`format_reward` with the ``(completion, row)`` signature of a reward function."""
    return format_reward(completion)


REWARD_FUNCTIONS: dict[str, RewardFunction] = {
    "accuracy": accuracy_reward,
    "format": _format_reward_ignoring_row,
}
"""The built-in reward functions by name, each called as ``f(completion, row)``."""


# --------------------------------------------------------------------------------------------
# Loading and combining reward functions


def load_reward_function(spec: str) -> RewardFunction:
    """The reward function a spec names: a built-in name or ``"module:attribute"``.

    ::

        spec in REWARD_FUNCTIONS        -> REWARD_FUNCTIONS[spec]
        spec == "pkg.module:name"       -> importlib.import_module("pkg.module").name
        spec == "pkg.module:Cls.method" -> dotted attributes are followed one by one

    The module is imported with :func:`importlib.import_module`; the spec is never evaluated
    (the ``module:attribute`` loading is shared with evaluation judges, ``videoktr._specs``).
    The result must be callable as ``f(completion: str, row: Mapping) -> float``.

    Raises:
        ValueError: naming the spec, when it is neither a built-in nor ``module:attribute``,
            when the module cannot be imported, when the attribute is missing, or when it is
            not callable.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a reward function spec must be a non-empty string, got {spec!r}")
    if spec in REWARD_FUNCTIONS:
        return REWARD_FUNCTIONS[spec]
    if not is_callable_spec(spec):
        builtins = ", ".join(repr(name) for name in REWARD_FUNCTIONS)
        raise ValueError(
            f"unknown reward function {spec!r}: not a built-in ({builtins}) and not of the form "
            "'module:function'"
        )
    return load_callable_spec(spec, "reward function")  # type: ignore[return-value]


def _named_functions(
    functions: Mapping[str, RewardFunction | str] | Sequence[str],
) -> dict[str, RewardFunction]:
    if isinstance(functions, str):
        raise TypeError(
            f"functions must be a mapping or a list of specs, not the string {functions!r}; "
            f"pass [{functions!r}]"
        )
    if isinstance(functions, Mapping):
        named = {}
        for name, function in functions.items():
            named[name] = load_reward_function(function) if isinstance(function, str) else function
            if not callable(named[name]):
                raise TypeError(f"reward function {name!r} is not callable: {function!r}")
        return named
    named = {}
    for spec in functions:
        if spec in named:
            raise ValueError(f"reward function {spec!r} is listed twice")
        named[spec] = load_reward_function(spec)
    return named


def _weights_by_name(
    weights: Mapping[str, float] | Sequence[float] | None, names: list[str]
) -> dict[str, float]:
    if weights is None:
        resolved: dict[str, object] = dict.fromkeys(names, 1.0)
    elif isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"weights name unknown reward functions {unknown}; known: {names}")
        resolved = {name: weights.get(name, 1.0) for name in names}
    else:
        weights = list(weights)
        if len(weights) != len(names):
            raise ValueError(
                f"got {len(weights)} weights for {len(names)} reward functions {names}"
            )
        resolved = dict(zip(names, weights))
    for name, weight in resolved.items():
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
        ):
            raise ValueError(f"the weight of {name!r} must be a finite number, got {weight!r}")
    return {name: float(weight) for name, weight in resolved.items()}  # type: ignore[arg-type]


def compute_rewards(
    completions: Sequence[str],
    rows: Sequence[Mapping],
    functions: Mapping[str, RewardFunction | str] | Sequence[str],
    weights: Mapping[str, float] | Sequence[float] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Every reward function on every completion, and their weighted sum.

    ::

        per_function[f][i] = float(f(completions[i], rows[i]))   (0.0 where that raised)
        total[i]           = sum_f weight_f * per_function[f][i]

    Args:
        completions: ``N`` generated texts.
        rows: the ``N`` dataset rows they answer (``rows[i]`` for ``completions[i]``).
        functions: ``{name: callable or spec}``, or a list of specs (built-in names or
            ``"module:function"``, see :func:`load_reward_function`), each spec its own name.
        weights: ``None`` (all 1.0), ``{name: weight}`` (unnamed functions weigh 1.0), or one
            weight per function in order.

    Returns:
        ``(total, per_function)``: a float32 ``[N]`` tensor and ``{name: float32 [N] tensor}``
        in the order of ``functions``.

    A reward function that raises on an item, or returns something that is not a finite
    number, scores 0.0 on that item, and the call emits one ``RuntimeWarning`` per such
    function naming it, how many items failed and the first exception. A score whose magnitude
    exceeds ``REWARD_LIMIT`` is clipped to it, with one warning per function; so is a weighted
    total. Only :class:`InvalidRowError` propagates: a bad dataset row is a bug, not a model error.

    Raises:
        ValueError: ``completions`` and ``rows`` differ in length, a spec cannot be loaded,
            or the weights do not fit the functions.
        TypeError: ``functions`` is a single string, or a mapping value is not callable.
        InvalidRowError: from a reward function, on a bad dataset row.
    """
    named = _named_functions(functions)
    names = list(named)
    weight_of = _weights_by_name(weights, names)
    if len(completions) != len(rows):
        raise ValueError(f"got {len(completions)} completions but {len(rows)} rows")
    per_function: dict[str, torch.Tensor] = {}
    total = torch.zeros(len(completions), dtype=torch.float64)
    for name, function in named.items():
        scores = []
        failures, first_error = 0, None
        for completion, row in zip(completions, rows):
            try:
                score = float(function(completion, row))
                if not math.isfinite(score):
                    raise ValueError(f"returned a non-finite score {score}")
            except InvalidRowError:
                raise
            except Exception as exc:  # noqa: BLE001 - a user reward must not stop training
                failures += 1
                first_error = first_error or exc
                score = 0.0
            scores.append(score)
        if failures:
            warnings.warn(
                f"reward function {name!r} failed on {failures} of {len(completions)} "
                f"completions, which scored 0.0; first error: "
                f"{type(first_error).__name__}: {first_error}",
                RuntimeWarning,
                stacklevel=2,
            )
        scores_tensor = _clipped(torch.tensor(scores, dtype=torch.float64), f"reward function {name!r}")
        total += weight_of[name] * scores_tensor
        per_function[name] = scores_tensor.to(torch.float32)
    return _clipped(total, "the weighted sum of the rewards").to(torch.float32), per_function


def _clipped(scores: torch.Tensor, what: str) -> torch.Tensor:
    """``scores`` clipped to ``[-REWARD_LIMIT, REWARD_LIMIT]``, warning once if any was beyond."""
    beyond = scores.abs() > REWARD_LIMIT
    if bool(beyond.any()):
        warnings.warn(
            f"{what} gave {int(beyond.sum())} score(s) beyond ±{REWARD_LIMIT:g} (largest {scores.abs().max().item():g}); "
            f"clipped to ±{REWARD_LIMIT:g} so the advantages stay finite",
            RuntimeWarning,
            stacklevel=3,
        )
    return scores.clamp(-REWARD_LIMIT, REWARD_LIMIT)
