"""Statistics of the tokens the signals selected, over the records of rollout dumps.

* each signal's selection counts, and the overlaps of the selections as Venn regions;
* the words each signal selects most often, and how often each such word is selected;
* the tokens no signal selected (the ones that got no gradient under a hard mask);
* summaries of each signal's scores, on selected and unselected tokens;
* how the run weighted its tokens (hard mask, soft weights, or every token).

Every function takes the records :func:`videoktr.data.rollouts.load_rollouts` returns.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..core.diagnostics import gradient_share
from ..data.rollouts import RolloutRecord
from .html import ordered_signals
from .words import Word, all_words

__all__ = [
    "ScoreSummary",
    "UnselectedStats",
    "WordCount",
    "dump_signals",
    "gradient_shares",
    "region_name",
    "score_summaries",
    "selection_counts",
    "selection_regions",
    "top_selected_words",
    "unselected_stats",
    "weighting_of",
]


def dump_signals(rollouts: Iterable[RolloutRecord]) -> list[str]:
    """The signals with a selection mask in any record (visual, temporal, entropy first)."""
    return ordered_signals({s for rollout in rollouts for s in rollout.signal_masks})


def selection_counts(rollouts: Sequence[RolloutRecord], signals: Sequence[str] | None = None) -> dict[str, int]:
    """Tokens selected by each signal, and by ``"any"`` of them (the union: the tokens a
    hard mask trains)."""
    signals = dump_signals(rollouts) if signals is None else list(signals)
    counts = dict.fromkeys([*signals, "any"], 0)
    for rollout in rollouts:
        for index in range(len(rollout.tokens)):
            chosen = _selected_by(rollout, index, signals)
            for signal in chosen:
                counts[signal] += 1
            counts["any"] += bool(chosen)
    return counts


def _selected_by(rollout: RolloutRecord, index: int, signals: Sequence[str]) -> tuple[str, ...]:
    # A signal missing from a record's masks (e.g. a dump from a run without it) selected nothing there.
    return tuple(s for s in signals if s in rollout.signal_masks and rollout.signal_masks[s][index])


def region_name(region: Sequence[str], signals: Sequence[str]) -> str:
    """``"none"``, ``"visual only"``, ``"visual & temporal only"``, ... and, for the region of
    every signal, their names joined without "only" (``"visual & temporal & entropy"``)."""
    if not region:
        return "none"
    joined = " & ".join(region)
    return joined if len(region) == len(signals) else f"{joined} only"


def selection_regions(rollouts: Sequence[RolloutRecord], signals: Sequence[str] | None = None) -> dict[str, int]:
    """Venn-diagram region counts of the signals' selections, over tokens.

    Each token falls in exactly one region: the set of signals that selected it, exactly
    (``"visual only"``: selected by visual and by no other signal; ``"none"``: by no signal).
    With the three signals that is 8 regions, which add up to the number of tokens. Regions
    are listed singles first, then pairs, then all, then none; empty regions are kept (a 0
    is a finding too).
    """
    signals = dump_signals(rollouts) if signals is None else list(signals)
    subsets = [()]
    for signal in signals:
        subsets += [subset + (signal,) for subset in subsets]
    subsets = sorted(subsets[1:], key=lambda subset: (len(subset), [signals.index(s) for s in subset])) + [()]
    counts = Counter(_selected_by(rollout, i, signals) for rollout in rollouts for i in range(len(rollout.tokens)))
    return {region_name(subset, signals): counts.get(subset, 0) for subset in subsets}


@dataclass(frozen=True)
class WordCount:
    """A word, how many of its occurrences were ``selected`` (by the signal in question, or
    for the unselected statistics: by none), and how many ``occurrences`` it has in all."""

    word: str
    selected: int
    occurrences: int

    @property
    def share(self) -> float:
        """The share of the word's occurrences counted in ``selected``."""
        return self.selected / self.occurrences if self.occurrences else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": self.share}


def _rank(selected: Counter, occurrences: Counter, top: int) -> list[WordCount]:
    # Most selected first; ties by word, so the report is the same on every run.
    ranked = sorted(selected.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [WordCount(word, count, occurrences[word]) for word, count in ranked]


def top_selected_words(
    rollouts: Sequence[RolloutRecord], top: int = 20, signals: Sequence[str] | None = None,
    words: list[list[Word]] | None = None,
) -> dict[str, list[WordCount]]:
    """For each signal, the ``top`` words it selected most often: how many occurrences of the
    word it selected, out of how many occurrences of the word in all completions (their ratio
    tells a word that is always selected from a frequent word that is sometimes selected).
    ``words`` may pass :func:`all_words`'s result to avoid recomputing it."""
    signals = dump_signals(rollouts) if signals is None else list(signals)
    words = all_words(rollouts) if words is None else words
    occurrences = Counter(word.key for record in words for word in record)
    result = {}
    for signal in signals:
        selected = Counter(word.key for record in words for word in record if signal in word.selected_by)
        result[signal] = _rank(selected, occurrences, top)
    return result


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class UnselectedStats:
    """The tokens no signal selected: under a hard mask, the ones that receive no gradient. A
    completion dumped without token weights (``selected`` null: GRPO, T-GRPO) trains every
    token, so none of its tokens is unselected.

    ``tokens``: all tokens; ``unselected``: those selected by no signal; ``top_words``: the
    words none of whose tokens any signal selected, most frequent first, with their share of
    all the word's occurrences; ``mean_scores``: for each signal, the mean of its score over
    the *key* tokens (selected by any signal) and over the unselected ones (NaN scores left out;
    ``None`` when there is no such token).
    """

    tokens: int
    unselected: int
    top_words: list[WordCount]
    mean_scores: dict[str, dict[str, float | None]]

    @property
    def share(self) -> float:
        return self.unselected / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens, "unselected": self.unselected, "share": self.share,
            "top_words": [w.to_dict() for w in self.top_words], "mean_scores": self.mean_scores,
        }


def unselected_stats(
    rollouts: Sequence[RolloutRecord], top: int = 20, signals: Sequence[str] | None = None,
    words: list[list[Word]] | None = None,
) -> UnselectedStats:
    """Counts, words and mean scores of the tokens no signal selected (see :class:`UnselectedStats`)."""
    signals = dump_signals(rollouts) if signals is None else list(signals)
    words = all_words(rollouts) if words is None else words
    scored = ordered_signals({s for rollout in rollouts for s in rollout.scores})
    values = {s: {"key": [], "unselected": []} for s in scored}
    tokens = unselected = 0
    for rollout in rollouts:
        trains_every_token = rollout.selected is None  # GRPO, T-GRPO: no selection, nothing left out
        for index in range(len(rollout.tokens)):
            group = "key" if trains_every_token or _selected_by(rollout, index, signals) else "unselected"
            tokens += 1
            unselected += group == "unselected"
            for signal, scores in rollout.scores.items():
                if not math.isnan(scores[index]):
                    values[signal][group].append(scores[index])
    occurrences = Counter(word.key for record in words for word in record)
    never = Counter(word.key for rollout, record in zip(rollouts, words, strict=True) if rollout.selected is not None
                    for word in record if not word.selected_by & set(signals))
    return UnselectedStats(
        tokens=tokens,
        unselected=unselected,
        top_words=_rank(never, occurrences, top),
        mean_scores={s: {group: _mean(v) for group, v in by_group.items()} for s, by_group in values.items()},
    )


@dataclass
class ScoreSummary:
    """One signal's scores over all tokens where it is available.

    ``tokens``: tokens with a score; ``missing``: tokens whose score is NaN (signal unavailable,
    e.g. temporal on an image); ``mean``, ``std`` (population), ``minimum``, ``median``,
    ``p90`` (90th percentile, linear interpolation), ``maximum``; ``mean_selected`` and
    ``mean_unselected``: the mean over the tokens this signal selected and did not select
    (``None`` when the dump has no mask for the signal, or no such token).
    """

    signal: str
    tokens: int
    missing: int
    mean: float | None
    std: float | None
    minimum: float | None
    median: float | None
    p90: float | None
    maximum: float | None
    mean_selected: float | None
    mean_unselected: float | None


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def score_summaries(rollouts: Sequence[RolloutRecord]) -> dict[str, ScoreSummary]:
    """A :class:`ScoreSummary` per signal that has scores in the dump."""
    summaries = {}
    for signal in ordered_signals({s for rollout in rollouts for s in rollout.scores}):
        available, selected, unselected, missing = [], [], [], 0
        has_mask = False
        for rollout in rollouts:
            if signal not in rollout.scores:
                continue
            mask = rollout.signal_masks.get(signal)
            has_mask |= mask is not None
            for index, value in enumerate(rollout.scores[signal]):
                if math.isnan(value):
                    missing += 1
                    continue
                available.append(value)
                if mask is not None:
                    (selected if mask[index] else unselected).append(value)
        ordered = sorted(available)
        mean = _mean(ordered)
        summaries[signal] = ScoreSummary(
            signal=signal, tokens=len(ordered), missing=missing, mean=mean,
            std=math.sqrt(sum((v - mean) ** 2 for v in ordered) / len(ordered)) if ordered else None,
            minimum=ordered[0] if ordered else None,
            median=_quantile(ordered, 0.5) if ordered else None,
            p90=_quantile(ordered, 0.9) if ordered else None,
            maximum=ordered[-1] if ordered else None,
            mean_selected=_mean(selected) if has_mask else None,
            mean_unselected=_mean(unselected) if has_mask else None,
        )
    return summaries


def weighting_of(rollouts: Sequence[RolloutRecord]) -> str:
    """How the dumped run weighted tokens: ``"hard"`` (0/1 mask), ``"soft"`` (weights in
    between) or ``"none"`` (every token trained: ``selected`` is null)."""
    if all(rollout.selected is None for rollout in rollouts):
        return "none"
    weights = [w for rollout in rollouts if rollout.selected is not None for w in rollout.selected]
    return "hard" if all(w in (0.0, 1.0) for w in weights) else "soft"


def gradient_shares(rollouts: Sequence[RolloutRecord], signals: Sequence[str] | None = None) -> dict[str, float] | None:
    """The share of the update's squared norm, ``sum A^2 g`` over the dumped tokens
    (``core.gradient_share``, with each record's advantage and gradient weights), on the tokens
    the mask dropped (``"unselected"``: training weight 0; 0 when every token was trained) and
    on each signal's selection. None when a record has no gradient weights (older dumps)."""
    if not rollouts or any(r.gradient_weights is None or r.advantage is None for r in rollouts):
        return None
    signals = dump_signals(rollouts) if signals is None else list(signals)
    length = max(len(r.tokens) for r in rollouts)

    def padded(rows: Iterable[Sequence[Any]], dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor([list(row) + [0] * (length - len(row)) for row in rows], dtype=dtype)

    completion = padded(([True] * len(r.tokens) for r in rollouts), torch.bool)
    weights = padded((r.gradient_weights for r in rollouts), torch.float64)
    advantages = torch.tensor([r.advantage for r in rollouts], dtype=torch.float64)
    masks = {"unselected": padded(([False] * len(r.tokens) if r.selected is None else [w == 0 for w in r.selected]
                                   for r in rollouts), torch.bool)}
    for signal in signals:
        masks[signal] = padded((r.signal_masks.get(signal, [False] * len(r.tokens)) for r in rollouts), torch.bool)
    return {name: gradient_share(advantages, weights, mask, completion).item() for name, mask in masks.items()}
