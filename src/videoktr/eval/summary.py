"""The summary of a benchmark run: accuracy over the counted questions, overall and per category
of the benchmark's breakdown, with what scored it; as a table and as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .benchmarks import get_benchmark, judge_applies, scorer_name
from .common import Judgement
from .judge import Judge

__all__ = ["EvalSummary", "summarize", "write_summary"]


@dataclass
class EvalSummary:
    """Accuracy of one benchmark run.

    Attributes:
        benchmark, parser: what was scored and how (``parser`` names the rule every score used).
        count: questions summarised (error rows included).
        counted: questions in the accuracy's denominator: ``count`` minus those the official
            aggregation drops (Video-MME: no letter extracted; VideoMMMU: empty response).
        correct: sum of the counted questions' scores.
        errors: error rows (score 0, counted): videos that could not be read, and questions
            whose LLM judge failed on every retry.
        accuracy: ``correct / counted`` (``None`` when nothing is counted).
        breakdown: ``{field: {value: {"count", "counted", "correct", "accuracy"}}}`` for each of
            the benchmark's breakdown fields (e.g. ``question_type``, ``duration``, ``kind``).
        scorer_note: what the benchmark's "official" parser reproduces.
        settings: generation and sampling settings of the run (empty when re-scored).
        predictions_file: where the per-question rows are.
        scorer: what produced the number: ``"official (judge: module:function)"`` (an LLM judge
            ran the official flow), ``"rule-based stand-in"`` (MMVU / TempCompass without a
            judge), ``"official"`` (the benchmark's official rules) or ``"<parser> parser"``.
        judge_errors: of ``errors``, the questions whose judge failed.
    """

    benchmark: str
    parser: str
    count: int
    counted: int
    correct: float
    errors: int
    accuracy: float | None
    breakdown: dict[str, dict[str, dict[str, Any]]]
    scorer_note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    predictions_file: str | None = None
    scorer: str = ""
    judge_errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_table(self) -> str:
        """A plain-text table: overall accuracy, then one block per breakdown field."""

        def percent(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.1f}"

        lines = [
            f"{self.benchmark}  (parser: {self.parser}; scorer: {self.scorer or self.parser})",
            f"{'':<28}{'acc %':>8}{'n':>8}",
            f"{'overall':<28}{percent(self.accuracy):>8}{self.counted:>8}",
        ]
        for name, values in self.breakdown.items():
            lines.append(f"-- {name}")
            for value, stats in values.items():
                label = value if len(value) <= 26 else value[:25] + "~"
                lines.append(f"  {label:<26}{percent(stats['accuracy']):>8}{stats['counted']:>8}")
        notes = [f"questions {self.count}, video errors {self.errors - self.judge_errors}"]
        if self.judge_errors:
            notes.append(f"judge errors {self.judge_errors}")
        if self.counted != self.count:
            notes.append(f"not counted by the official aggregation {self.count - self.counted}")
        lines.append("; ".join(notes))
        if self.scorer_note:
            lines.append(self.scorer_note)
        return "\n".join(lines)


def summarize(
    benchmark: str,
    records: Iterable[tuple[Mapping[str, str], Judgement | None]],
    parser: str,
    *,
    settings: Mapping[str, Any] | None = None,
    predictions_file: str | os.PathLike | None = None,
    judge: Judge | None = None,
    judge_errors: int = 0,
) -> EvalSummary:
    """Aggregate ``(breakdown, judgement)`` pairs; ``judgement=None`` is an error row (score 0,
    counted). Accuracy is the mean score over counted questions, overall and per category.
    ``judge`` is the judge that scored the records (it names the scorer), ``judge_errors`` how
    many of the error rows are judge failures."""
    module = get_benchmark(benchmark)
    if judge is not None and not judge_applies(benchmark, parser):
        judge = None
    parser_note = getattr(module, "PARSER_NOTES", {}).get(parser)  # a benchmark's other official revisions
    if judge is not None:
        note = module.JUDGED_SCORER_NOTE if parser_note is None else f"{parser_note}; then the LLM judge"
    elif parser == "official":
        note = module.SCORER_NOTE
    else:
        note = parser_note or f"{parser} parser"
    breakdown: dict[str, dict[str, dict[str, Any]]] = {
        name: {value: _empty_stats() for value in module.BREAKDOWN_ORDER.get(name, ())}
        for name in module.BREAKDOWN_FIELDS
    }
    count = counted = errors = 0
    correct = 0.0
    for categories, judgement in records:
        count += 1
        errors += judgement is None
        is_counted = judgement is None or judgement.counted
        score = 0.0 if judgement is None else judgement.score
        if is_counted:
            counted += 1
            correct += score
        for name in module.BREAKDOWN_FIELDS:
            stats = breakdown[name].setdefault(str(categories.get(name, "")), _empty_stats())
            stats["count"] += 1
            if is_counted:
                stats["counted"] += 1
                stats["correct"] += score
    for values in breakdown.values():
        for stats in values.values():
            stats["accuracy"] = stats["correct"] / stats["counted"] if stats["counted"] else None
    return EvalSummary(
        benchmark=benchmark,
        parser=parser,
        count=count,
        counted=counted,
        correct=correct,
        errors=errors,
        accuracy=correct / counted if counted else None,
        breakdown=breakdown,
        scorer_note=note,
        settings=dict(settings or {}),
        predictions_file=None if predictions_file is None else str(predictions_file),
        scorer=scorer_name(benchmark, parser, judge),
        judge_errors=judge_errors,
    )


def _empty_stats() -> dict[str, Any]:
    return {"count": 0, "counted": 0, "correct": 0.0, "accuracy": None}


def write_summary(summary: EvalSummary, path: str | os.PathLike) -> Path:
    """Write ``summary.to_dict()`` as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


