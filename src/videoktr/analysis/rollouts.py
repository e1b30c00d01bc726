"""Which tokens did the signals select during training? The report over rollout dumps.

With ``rollout_dump_steps: N`` the trainer writes a dump every N steps (the schema:
``videoktr.data.rollouts``). :func:`analyze_rollouts` computes every statistic of
``analysis.statistics`` (and, given a tagger, ``analysis.pos``) over the loaded records;
:meth:`RolloutAnalysis.format_text` prints them, ``write_json`` saves them, and
:func:`write_rollouts_html` draws the completions as a heatmap. ``videoktr analyze`` only parses
its arguments, calls :func:`~videoktr.data.rollouts.load_rollouts` and these, and prints.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..data.rollouts import RolloutRecord
from . import statistics
from .html import example_block, html_page, render_token_spans, signal_legend
from .pos import PosTagger, pos_distribution
from .statistics import ScoreSummary, UnselectedStats, WordCount
from .words import all_words

__all__ = ["RolloutAnalysis", "analyze_rollouts", "write_rollouts_html"]


@dataclass
class RolloutAnalysis:
    """Everything :func:`analyze_rollouts` computes; ``to_dict`` for JSON, ``format_text`` to print."""

    files: list[str]
    completions: int
    tokens: int
    steps: list[int]
    signals: list[str]
    weighting: str
    selected_tokens: dict[str, int]
    regions: dict[str, int]
    top_words: dict[str, list[WordCount]]
    unselected: UnselectedStats
    scores: dict[str, ScoreSummary]
    pos: dict[str, dict[str, int]] | None = None
    gradient_shares: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files, "completions": self.completions, "tokens": self.tokens, "steps": self.steps,
            "signals": self.signals, "weighting": self.weighting, "selected_tokens": self.selected_tokens,
            "regions": self.regions,
            "top_words": {s: [w.to_dict() for w in ws] for s, ws in self.top_words.items()},
            "unselected": self.unselected.to_dict(),
            "scores": {s: asdict(summary) for s, summary in self.scores.items()},
            "pos": self.pos,
            "gradient_shares": self.gradient_shares,
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as indented JSON; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def format_text(self) -> str:
        """The report as aligned plain-text tables."""

        def share(count: int) -> str:
            return f"{count / self.tokens:.1%}" if self.tokens else "-"

        steps = f"steps {self.steps[0]}-{self.steps[-1]}" if self.steps else "no step numbers"
        lines = [
            f"{self.completions} completions, {self.tokens} tokens, {steps}, from {len(self.files)} file(s)",
            f"signals with a selection: {', '.join(self.signals) or 'none'}; token weighting: {self.weighting}",
        ]
        if self.signals:
            lines += ["", "selected tokens", f"  {'signal':<30}{'tokens':>8}{'share':>9}"]
            for name, count in self.selected_tokens.items():
                label = "any (union)" if name == "any" else name
                lines.append(f"  {label:<30}{count:>8}{share(count):>9}")
            lines += ["", "overlap of the selections (each token in exactly one region)",
                      f"  {'region':<30}{'tokens':>8}{'share':>9}"]
            lines += [f"  {name:<30}{count:>8}{share(count):>9}" for name, count in self.regions.items()]
            for signal, words in self.top_words.items():
                lines += ["", f"words most often selected by {signal}", *_word_table(words, "selected")]
        if self.gradient_shares is not None:
            lines += ["", "share of the update's squared norm (sum A^2 g; g = 1 - 2 p(y) + sum p^2)"]
            lines += [f"  {'dropped by the mask' if name == 'unselected' else 'selected by ' + name:<30}{share:>9.1%}"
                      for name, share in self.gradient_shares.items()]
        stats = self.unselected
        if self.weighting == "none":
            lines += ["", "unselected tokens: none (token weighting none: GRPO or T-GRPO trains every token)"]
        else:
            lines += ["", (f"unselected tokens (no signal selected them): {stats.unselected} of {stats.tokens} "
                           f"({stats.share:.1%})")]
        if stats.mean_scores:
            lines.append(f"  {'mean score':<22}{'key tokens':>12}{'unselected':>12}")
            for signal, means in stats.mean_scores.items():
                lines.append(f"  {signal:<22}{_number(means['key']):>12}{_number(means['unselected']):>12}")
        lines += ["  most frequent unselected words", *_word_table(stats.top_words, "unselected", indent=4)]
        if self.scores:
            lines += ["", "scores per signal (NaN: signal unavailable; selected / unselected: by this signal)",
                      f"  {'signal':<10}{'tokens':>7}{'NaN':>6}"
                      + "".join(f"{name:>11}" for name in ("mean", "std", "min", "median", "p90", "max",
                                                             "selected", "unselected"))]
            for s in self.scores.values():
                values = (s.mean, s.std, s.minimum, s.median, s.p90, s.maximum, s.mean_selected, s.mean_unselected)
                cells = "".join(f"{_number(v):>11}" for v in values)
                lines.append(f"  {s.signal:<10}{s.tokens:>7}{s.missing:>6}{cells}")
        if self.pos is not None:
            lines += ["", "part of speech of selected words (share of each column's words)"]
            tags = list(self.pos.get("all", {}))
            columns = [*self.signals, "all"]
            lines.append(f"  {'tag':<8}" + "".join(f"{c:>10}" for c in columns))
            for tag in tags:
                row = []
                for column in columns:
                    total = sum(self.pos[column].values())
                    row.append(f"{self.pos[column].get(tag, 0) / total:.1%}" if total else "-")
                lines.append(f"  {tag:<8}" + "".join(f"{cell:>10}" for cell in row))
        return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _word_table(words: Sequence[WordCount], counted: str, indent: int = 2) -> list[str]:
    if not words:
        return [" " * indent + "(none)"]
    pad = " " * indent
    width = max(12, *(len(w.word) + 2 for w in words))
    lines = [f"{pad}{'word':<{width}}{counted:>11}{'of':>8}{'share':>8}"]
    lines += [f"{pad}{w.word:<{width}}{w.selected:>11}{w.occurrences:>8}{w.share:>8.0%}" for w in words]
    return lines


def analyze_rollouts(
    rollouts: Sequence[RolloutRecord], top: int = 20, pos_tagger: PosTagger | None = None
) -> RolloutAnalysis:
    """Every statistic of ``analysis.statistics`` over ``rollouts`` (``data.load_rollouts``); the POS
    distribution only when a ``pos_tagger`` is given (e.g. :func:`load_pos_tagger`)."""
    signals = statistics.dump_signals(rollouts)
    words = all_words(rollouts)
    return RolloutAnalysis(
        files=list(dict.fromkeys(r.file for r in rollouts)),
        completions=len(rollouts),
        tokens=sum(len(r.tokens) for r in rollouts),
        steps=sorted({r.step for r in rollouts if isinstance(r.step, int)}),
        signals=signals,
        weighting=statistics.weighting_of(rollouts),
        selected_tokens=statistics.selection_counts(rollouts, signals),
        regions=statistics.selection_regions(rollouts, signals),
        top_words=statistics.top_selected_words(rollouts, top, signals, words),
        unselected=statistics.unselected_stats(rollouts, top, signals, words),
        scores=statistics.score_summaries(rollouts),
        pos=None if pos_tagger is None else pos_distribution(rollouts, pos_tagger, signals, words),
        gradient_shares=statistics.gradient_shares(rollouts, signals),
    )


def write_rollouts_html(
    path: str | Path, analysis: RolloutAnalysis, rollouts: Sequence[RolloutRecord], max_completions: int = 200
) -> Path:
    """An HTML page: the overlap and top-word tables, then the first ``max_completions``
    completions with each token coloured by the signals that selected it (hover: scores and
    training weight). Returns the path written."""
    path = Path(path)
    rows = []
    for rollout in rollouts[:max_completions]:
        meta = [html.escape(str(rollout.prompt_id or rollout.source))]
        if rollout.step is not None:
            meta.append(f"step {rollout.step}")
        if rollout.problem_type:
            meta.append(html.escape(rollout.problem_type))
        if rollout.reward is not None:
            meta.append(f"reward {rollout.reward:.3f}")
        if rollout.advantage is not None:
            meta.append(f"advantage {rollout.advantage:+.3f}")
        spans = render_token_spans(rollout.tokens, rollout.signal_masks, rollout.scores, weights=rollout.selected)
        rows.append(example_block(" &middot; ".join(meta), spans))
    regions = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{count}</td></tr>" for name, count in analysis.regions.items()
    )
    top_words = "".join(
        f"<tr><td>{signal}</td><td>"
        + ", ".join(f"{html.escape(w.word)} ({w.selected}/{w.occurrences})" for w in words[:10])
        + "</td></tr>"
        for signal, words in analysis.top_words.items()
    )
    shown = min(len(rollouts), max_completions)
    body = f"""<h1>videoktr rollout analysis</h1>
<p>{analysis.completions} completions, {analysis.tokens} tokens from {len(analysis.files)} file(s);
token weighting: {analysis.weighting}.</p>
<h2>Overlap of the selections (tokens)</h2>
<table><tr><th>region</th><th>tokens</th></tr>{regions}</table>
<h2>Words most often selected</h2>
<table><tr><th>signal</th><th>word (selected / occurrences)</th></tr>{top_words}</table>
<h2>Completions ({shown} of {len(rollouts)})</h2><p>Colour: the signals that selected a token
{signal_legend(analysis.signals)}. Hover a token for its scores and training weight.</p>{''.join(rows)}"""
    path.write_text(html_page("videoktr rollout analysis", body), encoding="utf-8")
    return path
