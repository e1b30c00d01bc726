"""The benchmarks: one module each behind the ``Benchmark`` protocol, the registry, and the
one-row scoring entry point.

A benchmark module implements ``Benchmark`` (the module itself is the implementation: its
constants and functions are the protocol's members):

* ``NAME``, ``PARSERS`` (``"official"`` first), ``BREAKDOWN_FIELDS`` (the keys of
  ``EvalItem.breakdown``), ``BREAKDOWN_ORDER`` (categories always reported, in the benchmark's
  order, e.g. Video-Holmes's seven question types), ``SCORER_NOTE`` (what "official" means there);
* ``load_items(data_dir) -> list[EvalItem]``: the official annotation files, validated;
* ``build_prompt(row) -> str``: the prompt the official script sends;
* ``judge(row, output, parser) -> Judgement``: one output scored against one annotation row.

A benchmark whose official scorer asks an LLM judge (``mmvu``, ``tempcompass``) implements
``JudgedBenchmark``: also ``JUDGE_PARSERS`` (the parsers that ask it), ``JUDGED_SCORER_NOTE``,
and ``judge(row, output, parser, judge=...)``; see ``videoktr.eval.judge``. Giving a judge for
any other benchmark or parser is a documented no-op.

Adding a benchmark is one new module here that implements the protocol, listed in
``BENCHMARKS``; ``tests/eval/test_protocol.py`` checks every listed module against it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..common import EvalItem, Judgement
from ..judge import Judge, JudgeFunction, as_judge
from . import mmvu, synthetic, tempcompass, video_holmes, videomme, videommmu

__all__ = [
    "BENCHMARKS",
    "STAND_IN_SCORER",
    "Benchmark",
    "JudgedBenchmark",
    "get_benchmark",
    "judge_applies",
    "judge_output",
    "score_output",
    "scorer_name",
]


class Benchmark(Protocol):
    """What every benchmark module offers (see the package docstring)."""

    NAME: str
    PARSERS: Sequence[str]
    BREAKDOWN_FIELDS: Sequence[str]
    BREAKDOWN_ORDER: Mapping[str, Sequence[str]]
    SCORER_NOTE: str

    def load_items(self, data_dir: str | os.PathLike) -> list[EvalItem]:
        """The benchmark's questions, read and validated from its official annotation files."""

    def build_prompt(self, row: Mapping[str, Any]) -> str:
        """The user turn's text for one annotation row, as the official script builds it."""

    def judge(self, row: Mapping[str, Any], output: str, parser: str = "official") -> Judgement:
        """One model output scored against one annotation row with ``parser``'s rules."""


class JudgedBenchmark(Benchmark, Protocol):
    """A benchmark whose official scorer asks an LLM judge (MMVU, TempCompass)."""

    JUDGE_PARSERS: Sequence[str]
    JUDGED_SCORER_NOTE: str

    def judge(self, row: Mapping[str, Any], output: str, parser: str = "official",
              judge: Judge | None = None) -> Judgement:
        """As ``Benchmark.judge``; with ``judge`` and a parser of ``JUDGE_PARSERS``, the
        official judge flow."""


STAND_IN_SCORER = "rule-based stand-in"
"""The scorer of a judge benchmark's ``official`` parser when no judge is given."""

BENCHMARKS: dict[str, Benchmark] = {
    "video_holmes": video_holmes,
    "videommmu": videommmu,
    "mmvu": mmvu,
    "tempcompass": tempcompass,
    "videomme": videomme,
    "synthetic": synthetic,
}
"""Benchmark name -> module (each implements ``Benchmark``)."""


def get_benchmark(benchmark: str) -> Benchmark:
    try:
        return BENCHMARKS[benchmark]
    except KeyError:
        raise ValueError(
            f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}"
        ) from None


def judge_applies(benchmark: str, parser: str) -> bool:
    """Whether ``parser`` of ``benchmark`` asks an LLM judge when one is given."""
    return parser in getattr(get_benchmark(benchmark), "JUDGE_PARSERS", ())


def scorer_name(benchmark: str, parser: str, judge: Judge | None = None) -> str:
    """What produces the scores, as rows and summaries record it::

        judge benchmark (mmvu, tempcompass), judged parser P, a judge -> "P (judge: NAME)"
        judge benchmark, parser "official", no judge                   -> "rule-based stand-in"
        judge benchmark, another judged parser P, no judge             -> "rule-based stand-in (P)"
        any other benchmark, parser "official"                         -> "official"
        any other parser P                                             -> "P parser"

    (``NAME`` is the judge's ``module:function``.) A judge given where it does not apply leaves
    the scorer unchanged.
    """
    if judge_applies(benchmark, parser):
        if judge is not None:
            return f"{parser} (judge: {judge.name})"
        return STAND_IN_SCORER if parser == "official" else f"{STAND_IN_SCORER} ({parser})"
    return "official" if parser == "official" else f"{parser} parser"


def judge_output(
    benchmark: str,
    item: Mapping[str, Any] | EvalItem,
    output: str,
    parser: str = "official",
    *,
    judge: Judge | str | JudgeFunction | None = None,
) -> Judgement:
    """Like :func:`score_output`, with the extracted prediction, the counted flag and, when a
    judge was asked, its reply and verdict."""
    module = get_benchmark(benchmark)
    row = item.row if isinstance(item, EvalItem) else item
    if not isinstance(row, Mapping):
        raise TypeError(f"item must be an annotation row (a mapping), got {type(row).__name__}")
    resolved = as_judge(judge)
    if resolved is not None and judge_applies(benchmark, parser):
        return module.judge(row, output, parser, judge=resolved)
    return module.judge(row, output, parser)


def score_output(
    benchmark: str,
    item: Mapping[str, Any] | EvalItem,
    output: str,
    parser: str = "official",
    *,
    judge: Judge | str | JudgeFunction | None = None,
) -> float:
    """Score ONE model output against ONE official annotation row, as the benchmark scores it.

    ::

        score_output(benchmark, row, output, parser) = BENCHMARKS[benchmark].judge(row, output,
                                                                                   parser).score

    ``item`` is the benchmark's annotation row (or an ``EvalItem``, whose ``row`` is used); for
    benchmarks whose files nest questions (Video-MME, TempCompass, VideoMMMU) the row is the
    flattened form the module documents. ``parser`` is ``"official"`` (the benchmark's own rule,
    quirks included) or ``"strict"`` (see ``videoktr.eval.common.strict_choice``); the synthetic
    benchmark also accepts ``"video_r1"``. Returns a score in ``[0, 1]``; a malformed output
    scores 0.0 and never raises.

    ``judge``: an LLM judge (``f(messages) -> str``, a ``"module:function"`` spec or a
    ``videoktr.eval.judge.Judge``) for the benchmarks whose official scorer asks one (``mmvu``:
    every output; ``tempcompass``: outputs its rules cannot match), with ``parser="official"``;
    ignored elsewhere. An unparseable reply scores 0.0; a judge that keeps raising raises
    ``videoktr.eval.judge.JudgeError`` (after its retries).
    """
    return judge_output(benchmark, item, output, parser, judge=judge).score
