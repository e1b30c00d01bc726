"""The benchmark registry and the one-row scoring entry point.

Every benchmark is a module with the same surface:

* ``NAME``, ``PARSERS`` (``"official"`` first), ``BREAKDOWN_FIELDS`` (the keys of
  ``EvalItem.breakdown``), ``BREAKDOWN_ORDER`` (categories always reported, in the benchmark's
  order, e.g. Video-Holmes's seven question types), ``SCORER_NOTE`` (what "official" means there);
* ``load_items(data_dir) -> list[EvalItem]``: the official annotation files, validated;
* ``build_prompt(row) -> str``: the prompt the official script sends;
* ``judge(row, output, parser) -> Judgement``: one output scored against one annotation row.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from . import mmvu, synthetic, tempcompass, video_holmes, videomme, videommmu
from .common import EvalItem, Judgement

__all__ = ["BENCHMARKS", "get_benchmark", "judge_output", "score_output"]

BENCHMARKS: dict[str, ModuleType] = {
    "video_holmes": video_holmes,
    "videommmu": videommmu,
    "mmvu": mmvu,
    "tempcompass": tempcompass,
    "videomme": videomme,
    "synthetic": synthetic,
}
"""Benchmark name -> module (see this module's docstring for the surface each one offers)."""


def get_benchmark(benchmark: str) -> ModuleType:
    try:
        return BENCHMARKS[benchmark]
    except KeyError:
        raise ValueError(
            f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}"
        ) from None


def judge_output(
    benchmark: str, item: Mapping[str, Any] | EvalItem, output: str, parser: str = "official"
) -> Judgement:
    """Like :func:`score_output`, with the extracted prediction and the counted flag."""
    module = get_benchmark(benchmark)
    row = item.row if isinstance(item, EvalItem) else item
    if not isinstance(row, Mapping):
        raise TypeError(f"item must be an annotation row (a mapping), got {type(row).__name__}")
    return module.judge(row, output, parser)


def score_output(
    benchmark: str, item: Mapping[str, Any] | EvalItem, output: str, parser: str = "official"
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
    """
    return judge_output(benchmark, item, output, parser).score
