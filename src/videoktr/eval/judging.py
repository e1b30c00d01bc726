"""Scoring stored outputs: with the parser's rules, or with an LLM judge whose verdicts are kept.

Judge verdicts cost calls and need not be reproducible, so they are stored in the predictions
rows and reused, never asked twice: a row already scored by the same scorer and parser keeps its
stored score. When a judge applies, every row with an output that this judge has not scored yet
(rows scored by rules or another judge, and rows whose judge failed) is judged from its stored
output, without the model, and written back into the predictions file in place (every few rows,
so an interruption loses at most those few verdicts and never a row). A judge that raises on
every retry turns the question into an error row (``error_source: "judge"``, score 0, counted)
that keeps the model's output; the next run or ``score`` with a judge asks again, and scoring
without a judge scores the stored output by rules. Do not score a predictions file with a judge
while a run is still appending to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .common import Judgement
from .judge import Judge, JudgeError
from .predictions import is_video_error, rejudged_row, replace_rows

__all__ = ["judge_stored_outputs", "progress_bar", "rescore", "score_output_with"]


def _needs_judging(row: Mapping[str, Any], parser: str, scorer: str) -> bool:
    """Whether a stored row has an output that the current judge has not scored yet."""
    if not isinstance(row.get("output"), str) or is_video_error(row):
        return False
    if row.get("error_source") == "judge":
        return True  # the judge failed last time: ask again
    return row.get("scorer") != scorer or row.get("parser") != parser


_JUDGE_FLUSH_EVERY = 16
"""Re-judged rows are written back into the predictions file in groups of this many."""


def judge_stored_outputs(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    annotations: Mapping[str, Mapping[str, Any]],
    module: Any,
    parser: str,
    scorer: str,
    judge: Judge,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Judge the stored outputs of ``rows`` that ``judge`` has not scored (``annotations``: id ->
    annotation row; rows without one are left alone) and write the new rows back into ``path``
    every few rows and on the way out, also when interrupted. Returns id -> new row."""
    stale = [
        row for row in rows if row["id"] in annotations and _needs_judging(row, parser, scorer)
    ]
    updated: dict[str, dict[str, Any]] = {}
    unsaved: dict[str, dict[str, Any]] = {}
    bar = progress_bar(len(stale), "judging stored outputs", progress)
    try:
        for row in stale:
            try:
                judgement = module.judge(annotations[row["id"]], row["output"], parser, judge=judge)
                new = rejudged_row(row, parser, scorer, judgement, None)
            except JudgeError as exc:
                new = rejudged_row(row, parser, scorer, None, str(exc))
            updated[row["id"]] = unsaved[row["id"]] = new
            if len(unsaved) >= _JUDGE_FLUSH_EVERY:
                replace_rows(path, unsaved)
                unsaved.clear()
            if bar is not None:
                bar.update(1)
    finally:
        if unsaved:
            replace_rows(path, unsaved)
        if bar is not None:
            bar.close()
    return updated


def progress_bar(total: int, description: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a convenience, never a requirement
        return None
    return tqdm(total=total, desc=description, unit="q")


def score_output_with(
    module: Any, annotation: Mapping[str, Any], output: str, parser: str, judge: Judge | None
) -> Judgement:
    """One output under ``parser``; ``judge`` only where it applies (the caller checks)."""
    if judge is None:
        return module.judge(annotation, output, parser)
    return module.judge(annotation, output, parser, judge=judge)


def _stored_judgement(prediction: Mapping[str, Any]) -> Judgement:
    return Judgement(
        score=float(prediction.get("score", 0.0)),
        prediction=prediction.get("prediction"),
        counted=bool(prediction.get("counted", True)),
        judge_reply=prediction.get("judge_reply"),
        judge_verdict=prediction.get("judge_verdict"),
    )


def rescore(
    module: Any,
    annotation: Mapping[str, Any],
    prediction: Mapping[str, Any],
    parser: str,
    judge: Judge | None = None,
    scorer: str | None = None,
) -> tuple[Judgement | None, bool]:
    """``(judgement, judge_failed)`` of one stored row; ``judgement=None`` for an error row.

    Unreadable-video rows stay errors. With a judge (one that applies), a row this scorer already
    scored keeps its stored verdict (or stays a judge error); any other row is judged now. Without
    a judge every output is re-scored by ``parser``'s rules, a judge-error row's output included.
    """
    if is_video_error(prediction):
        return None, False
    output = prediction.get("output")
    output = output if isinstance(output, str) else ""
    if judge is not None:
        if prediction.get("scorer") == scorer and prediction.get("parser") == parser:
            if prediction.get("error_source") == "judge":
                return None, True
            return _stored_judgement(prediction), False
        try:
            return score_output_with(module, annotation, output, parser, judge), False
        except JudgeError:
            return None, True
    return module.judge(annotation, output, parser), False


