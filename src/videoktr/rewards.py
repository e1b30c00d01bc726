"""Rewards for GRPO on the Video-R1 data format.

A reward scores one model completion against one dataset row. Rows follow Video-R1: ``problem``,
``problem_type`` (one of :data:`PROBLEM_TYPES`), ``options`` (``["A. red", "B. blue"]`` for
multiple choice), ``solution`` (``"<answer>B</answer>"``, the tags optional here), ``path``,
``data_type``. Completions are asked to write ``<think>reasoning</think><answer>answer</answer>``.

Two built-in rewards, as in Video-R1 (``src/r1-v/src/open_r1/grpo.py``):

- ``accuracy``: the answer in the completion's last ``<answer>`` block, scored against the
  solution by a rule chosen by ``problem_type`` (exact letter, exact number, 1 - WER, ROUGE F1,
  1 - relative error). Always in ``[0, 1]``.
- ``format``: 1.0 when the completion is exactly ``<think>...</think>`` then
  ``<answer>...</answer>``, else 0.0.

Design rules:

- **Same scores as Video-R1 on well-formed inputs.** The numerical rule keeps Video-R1's
  decimal-mark check and 2-decimal rounding, OCR is its whitespace-token WER, free-form its
  mean of ROUGE-1/2/L F1 with the Porter stemmer. The metrics come from libraries (``jiwer``,
  ``rouge-score``), not hand-written loops. Where we deliberately differ, the function's
  docstring says so under "Differs from Video-R1".
- **The model's output never raises.** A completion with no answer block, an empty answer or
  an unparsable number scores 0.0. Nothing is ever passed to ``eval``.
- **The dataset's errors do raise.** An unknown ``problem_type`` or a missing ``solution`` is
  a bug upstream of the reward (the loader validates rows); it raises :class:`InvalidRowError`
  (a ``ValueError``), which :func:`compute_rewards` lets through.
- **A failing user reward does not stop training.** :func:`compute_rewards` scores the items it
  raised on as 0.0 and emits one warning per reward function per call.

A reward function is any callable ``f(completion: str, row: Mapping) -> float``. Register one by
name in :data:`REWARD_FUNCTIONS` or name it as ``"package.module:function"`` (see
:func:`load_reward_function`).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import jiwer
import torch
from rouge_score import rouge_scorer

from ._specs import is_callable_spec, load_callable_spec

__all__ = [
    "PROBLEM_TYPES",
    "REWARD_FUNCTIONS",
    "InvalidRowError",
    "RewardFunction",
    "accuracy_reward",
    "compute_rewards",
    "extract_answer",
    "format_reward",
    "load_reward_function",
]

RewardFunction = Callable[[str, Mapping], float]

PROBLEM_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")

# Video-R1's free-form reward: the mean F1 of these three ROUGE variants, with stemming.
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class InvalidRowError(ValueError):
    """The dataset row, not the model's completion, is wrong (e.g. an unknown problem_type).

    Raised by the built-in rewards and never swallowed by :func:`compute_rewards`: it is a
    programming or data error that must surface, unlike a malformed completion (scored 0.0).
    """


# --------------------------------------------------------------------------------------------
# Answer extraction


# One answer block whose content holds neither an opening nor a closing answer tag.
_ANSWER_BLOCK = re.compile(r"<answer>((?:(?!</?answer>).)*)</answer>", re.DOTALL)


def extract_answer(text: str) -> str | None:
    """The content of the last ``<answer>...</answer>`` block of ``text``, stripped.

    ::

        blocks = every "<answer>" X "</answer>" in text, X containing neither "<answer>"
                 nor "</answer>" (tags are case-sensitive; X may span lines)
        extract_answer(text) = strip(X of the last block)    if blocks
                             = None                          otherwise (also for non-str text)

    An empty block gives ``""``, not ``None``. An unclosed trailing ``<answer>`` is ignored, so
    ``"<answer>A</answer> ... <answer>B"`` gives ``"A"``; a stray opening tag inside a block is
    skipped, so ``"<answer><answer>B</answer>"`` gives ``"B"``.

    Differs from Video-R1: Video-R1 takes the *first* block (``re.search``) and returns ``""``
    when there is none. We take the last, the model's final word after any self-correction, and
    return ``None`` so that "no answer" and "empty answer" stay distinguishable. On a completion
    with exactly one block both give the same string.
    """
    if not isinstance(text, str):
        return None
    blocks = _ANSWER_BLOCK.findall(text)
    return blocks[-1].strip() if blocks else None


def _reference_answer(solution: str) -> str:
    """The ground-truth answer: the solution's last answer block, or the whole solution when it
    carries no (complete) answer block, stripped either way."""
    answer = extract_answer(solution)
    return solution.strip() if answer is None else answer


# --------------------------------------------------------------------------------------------
# Multiple choice

# "B", "B.", "B)", "B:", "(B)", any letter case. Nothing else may follow.
_LABEL_ALONE = re.compile(r"\(\s*([A-Za-z])\s*\)|([A-Za-z])[.):]?")
# "B. blue", "B) blue", "B: blue", "(B) blue": a punctuated label, then the option's text.
_LABEL_AND_TEXT = re.compile(r"(?:\(\s*([A-Za-z])\s*\)|([A-Za-z])[.):])\s*(.*\S)", re.DOTALL)


def _comparable_option_text(text: str) -> str:
    """Option text up to letter case, runs of whitespace and one trailing period."""
    return " ".join(text.split()).casefold().removesuffix(".").rstrip()


def _option_texts(options: object) -> dict[str, str]:
    """``{"A": "red", "B": "blue"}`` from ``["A. red", "B. blue"]``; unparsable entries skipped."""
    texts: dict[str, str] = {}
    if isinstance(options, str) or not isinstance(options, Sequence):
        return texts
    for option in options:
        if not isinstance(option, str):
            continue
        match = _LABEL_AND_TEXT.fullmatch(option.strip())
        if match:
            letter = (match.group(1) or match.group(2)).upper()
            texts.setdefault(letter, _comparable_option_text(match.group(3)))
    return texts


def _chosen_letter(answer: str, option_texts: Mapping[str, str]) -> str | None:
    """The option letter an answer names (upper case), or None if it names none or several."""
    match = _LABEL_ALONE.fullmatch(answer)
    if match:
        return (match.group(1) or match.group(2)).upper()
    match = _LABEL_AND_TEXT.fullmatch(answer)
    if match:
        letter = (match.group(1) or match.group(2)).upper()
        if option_texts.get(letter) == _comparable_option_text(match.group(3)):
            return letter
    return None


def _multiple_choice_score(answer: str, reference: str, options: object) -> float:
    """1.0 iff the answer names the reference's option letter (see :func:`accuracy_reward`)."""
    option_texts = _option_texts(options)
    reference_letter = _chosen_letter(reference, option_texts)
    if reference_letter is None:
        # Not a letter: fall back to Video-R1's rule, exact equality of the stripped strings.
        return 1.0 if answer and answer == reference else 0.0
    return 1.0 if _chosen_letter(answer, option_texts) == reference_letter else 0.0


# --------------------------------------------------------------------------------------------
# Numbers


def _parse_number(text: str) -> float | None:
    """``float(text without commas)`` if that is a finite number, else None."""
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _has_decimal_mark(text: str) -> bool:
    return "." in text or "," in text


def _numerical_score(answer: str, reference: str) -> float:
    """Exact value match after Video-R1's rules (see :func:`accuracy_reward`)."""
    if _has_decimal_mark(answer) != _has_decimal_mark(reference):
        return 0.0
    answer_value, reference_value = _parse_number(answer), _parse_number(reference)
    if answer_value is None or reference_value is None:
        return 0.0
    return 1.0 if round(answer_value, 2) == round(reference_value, 2) else 0.0


def _regression_score(answer: str, reference: str) -> float:
    """One minus the relative error, clamped (see :func:`accuracy_reward`)."""
    answer_value, reference_value = _parse_number(answer), _parse_number(reference)
    if answer_value is None or reference_value is None:
        return 0.0
    if reference_value == 0.0:
        return 1.0 if answer_value == 0.0 else 0.0
    relative_error = abs(answer_value - reference_value) / abs(reference_value)
    return 1.0 - min(1.0, relative_error)


# --------------------------------------------------------------------------------------------
# Text metrics


def _warn_metric_failure(metric: str, exc: Exception) -> None:
    warnings.warn(
        f"{metric} raised {type(exc).__name__}: {exc}; the completion scored 0.0",
        RuntimeWarning,
        stacklevel=3,
    )


def _ocr_score(answer: str, reference: str) -> float:
    """One minus the word error rate, clamped (see :func:`accuracy_reward`)."""
    answer_words, reference_words = answer.split(), reference.split()
    if not answer_words or not reference_words:
        return 0.0
    try:
        error_rate = jiwer.wer(" ".join(reference_words), " ".join(answer_words))
    except Exception as exc:  # noqa: BLE001 - a metric-library failure must not stop training
        _warn_metric_failure("jiwer.wer", exc)
        return 0.0
    return min(1.0, max(0.0, 1.0 - float(error_rate)))


@lru_cache(maxsize=1)
def _rouge_scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def _free_form_score(answer: str, reference: str) -> float:
    """Mean ROUGE-1/2/L F1, clamped (see :func:`accuracy_reward`)."""
    if not answer:
        return 0.0
    try:
        scores = _rouge_scorer().score(reference, answer)
    except Exception as exc:  # noqa: BLE001 - a metric-library failure must not stop training
        _warn_metric_failure("rouge_score", exc)
        return 0.0
    mean_f1 = sum(scores[rouge_type].fmeasure for rouge_type in ROUGE_TYPES) / len(ROUGE_TYPES)
    return min(1.0, max(0.0, float(mean_f1)))


# --------------------------------------------------------------------------------------------
# The built-in rewards


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

    **Multiple choice.** ``letter(x)`` accepts exactly these forms of the stripped answer, with
    ``L`` one ASCII letter in either case (``"b"`` counts as ``B``):

    - the label alone: ``L``, ``L.``, ``L)``, ``L:``, ``(L)``;
    - a punctuated label, optional whitespace, then that option's own text: ``L. text``,
      ``L) text``, ``L: text``, ``(L) text``, where ``text`` equals the text of option ``L`` in
      ``row["options"]`` (``"B. blue"`` for options ``["A. red", "B. blue"]``), compared up to
      letter case, runs of whitespace and a trailing period. Without ``options`` in the row
      only the label alone is accepted.

    Anything else names no letter and scores 0.0: option text without its label (``"blue"``),
    a label with another option's text (``"B. red"``), and any answer naming two letters
    (``"A, B"``, ``"A and B"``, ``"AB"``, ``"A. red or B. blue"``). A solution that is not a
    letter is compared by Video-R1's rule, exact equality of the stripped strings.

    **Numerical.** ``has_mark(x)`` is whether ``x`` contains ``"."`` or ``","``; ``num(x)`` is
    ``float(x)`` with commas removed, and an unparsable or non-finite value scores 0.0. So
    ``"3.0"`` against ``"3"`` is 0.0 (the decimal check), ``"3.001"`` against ``"3.00"`` is 1.0
    (rounding; Python's ``round``), ``"-2"`` against ``"-2"`` is 1.0. As in Video-R1 a comma is
    a decimal *mark* for the check, so ``"1,000"`` matches ``"1,000"`` and ``"1000.0"`` but not
    ``"1000"``.

    **OCR.** ``WER(s, a)`` is the word error rate from ``jiwer``: word-level edit distance
    (substitutions + deletions + insertions) over the number of words in ``s``, words being the
    runs of non-whitespace (``str.split()``), case- and punctuation-sensitive.

    **Free-form.** ROUGE F1 from ``rouge-score`` with the Porter stemmer and its default
    tokenizer (lower-cased ``[a-z0-9]`` tokens; text with no such token scores 0.0). ROUGE-2
    of a one-word answer is 0, so even an exact one-word answer scores 2/3, as in Video-R1.

    **Regression.** ``num`` as for numerical, without the decimal check. The relative error
    is undefined for a zero ground truth; we take its limit: an exact 0 scores 1.0, anything
    else 0.0.

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
    - multiple choice accepts the label forms above, not only the identical string
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
    reference = _reference_answer(solution)
    if problem_type == "multiple choice":
        return _multiple_choice_score(answer, reference, row.get("options"))
    if problem_type == "numerical":
        return _numerical_score(answer, reference)
    if problem_type == "OCR":
        return _ocr_score(answer, reference)
    if problem_type == "free-form":
        return _free_form_score(answer, reference)
    return _regression_score(answer, reference)


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
    function naming it, how many items failed and the first exception. Only
    :class:`InvalidRowError` propagates: a bad dataset row is a bug, not a model error.

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
        scores_tensor = torch.tensor(scores, dtype=torch.float64)
        total += weight_of[name] * scores_tensor
        per_function[name] = scores_tensor.to(torch.float32)
    return total.to(torch.float32), per_function
