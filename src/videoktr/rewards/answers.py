"""Reading and scoring one answer: the last answer block of a completion, and the rule of each
Video-R1 problem type (exact letter, exact number, 1 - WER, ROUGE F1, 1 - relative error).

The metrics come from libraries (``jiwer``, ``rouge-score``), not hand-written loops. A
malformed answer scores 0.0; nothing here ever raises on the model's output.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import jiwer
from rouge_score import rouge_scorer

__all__ = ["SCORERS", "extract_answer", "free_form_score", "multiple_choice_score", "numerical_score", "ocr_score",
           "option_texts", "reference_answer", "regression_score"]

# Video-R1's free-form reward: the mean F1 of these three ROUGE variants, with stemming.
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


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
    with exactly one ``<answer>`` and one ``</answer>``, in that order, both give the same
    string. One complete block is not enough: with a stray opening tag, as in
    ``"<answer><answer>1000</answer>"``, Video-R1's non-greedy match starts at the first tag and
    gives ``"<answer>1000"``, where we give ``"1000"``.
    """
    if not isinstance(text, str):
        return None
    blocks = _ANSWER_BLOCK.findall(text)
    return blocks[-1].strip() if blocks else None


def reference_answer(solution: str) -> str:
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


def option_texts(options: object) -> dict[str, str]:
    """``{"A": "red", "B": "blue"}`` from ``["A. red", "B. blue"]`` (any label form the scorer reads,
    texts compared as the scorer compares them); unparsable entries skipped."""
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


def multiple_choice_score(answer: str, reference: str, options: object) -> float:
    """1.0 iff the answer names the reference's option letter.

    ``letter(x)`` accepts exactly these forms of the stripped answer, with
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
    """
    texts = option_texts(options)
    reference_letter = _chosen_letter(reference, texts)
    if reference_letter is None:
        # Not a letter: fall back to Video-R1's rule, exact equality of the stripped strings.
        return 1.0 if answer and answer == reference else 0.0
    return 1.0 if _chosen_letter(answer, texts) == reference_letter else 0.0


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


def numerical_score(answer: str, reference: str) -> float:
    """Exact value match after Video-R1's rules.

    ``has_mark(x)`` is whether ``x`` contains ``"."`` or ``","``; ``num(x)`` is
    ``float(x)`` with commas removed, and an unparsable or non-finite value scores 0.0. So
    ``"3.0"`` against ``"3"`` is 0.0 (the decimal check), ``"3.001"`` against ``"3.00"`` is 1.0
    (rounding; Python's ``round``), ``"-2"`` against ``"-2"`` is 1.0. As in Video-R1 a comma is
    a decimal *mark* for the check, so ``"1,000"`` matches ``"1,000"`` and ``"1000.0"`` but not
    ``"1000"``.
    """
    if _has_decimal_mark(answer) != _has_decimal_mark(reference):
        return 0.0
    answer_value, reference_value = _parse_number(answer), _parse_number(reference)
    if answer_value is None or reference_value is None:
        return 0.0
    return 1.0 if round(answer_value, 2) == round(reference_value, 2) else 0.0


def regression_score(answer: str, reference: str) -> float:
    """One minus the relative error, clamped.

    ``num`` as for numerical, without the decimal check. The relative error
    is undefined for a zero ground truth; we take its limit: an exact 0 scores 1.0, anything
    else 0.0.
    """
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


def ocr_score(answer: str, reference: str) -> float:
    """One minus the word error rate, clamped.

    ``WER(s, a)`` is the word error rate from ``jiwer``: word-level edit distance
    (substitutions + deletions + insertions) over the number of words in ``s``, words being the
    runs of non-whitespace (``str.split()``), case- and punctuation-sensitive.
    """
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


def free_form_score(answer: str, reference: str) -> float:
    """Mean ROUGE-1/2/L F1, clamped.

    ROUGE F1 from ``rouge-score`` with the Porter stemmer and its default
    tokenizer (lower-cased ``[a-z0-9]`` tokens; text with no such token scores 0.0). ROUGE-2
    of a one-word answer is 0, so even an exact one-word answer scores 2/3, as in Video-R1.
    """
    if not answer:
        return 0.0
    try:
        scores = _rouge_scorer().score(reference, answer)
    except Exception as exc:  # noqa: BLE001 - a metric-library failure must not stop training
        _warn_metric_failure("rouge_score", exc)
        return 0.0
    mean_f1 = sum(scores[rouge_type].fmeasure for rouge_type in ROUGE_TYPES) / len(ROUGE_TYPES)
    return min(1.0, max(0.0, float(mean_f1)))


SCORERS: dict[str, Callable[[str, str, Mapping], float]] = {
    "multiple choice": lambda answer, reference, row: multiple_choice_score(answer, reference, row.get("options")),
    "numerical": lambda answer, reference, row: numerical_score(answer, reference),
    "OCR": lambda answer, reference, row: ocr_score(answer, reference),
    "free-form": lambda answer, reference, row: free_form_score(answer, reference),
    "regression": lambda answer, reference, row: regression_score(answer, reference),
}
"""Problem type -> ``score(answer, reference, row)``: the rule ``accuracy_reward`` applies."""
