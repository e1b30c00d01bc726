"""Which tokens did the signals select during training? Statistics from rollout dumps.

With ``rollout_dump_steps: N`` the trainer writes ``OUTPUT_DIR/rollouts/stepNNNNNN-rankR.jsonl``
every N steps, one JSON line per completion (see ``VideoGRPOTrainer._dump_rollouts``)::

    step, prompt_id, problem_type, completion, reward, rewards, advantage
    tokens        the completion's tokenizer tokens (byte-level BPE: "Ġ" is a space)
    token_ids     their ids
    scores        {signal: [score per token]}; NaN where a signal is unavailable
    signal_masks  {signal: [selected per token]}: each signal's own top-r selection
    selected      the per-token training weight: the union mask (1.0 / 0.0) or soft
                  weights; null when every token was trained (vanilla GRPO)

This module reads such files and computes, over all their tokens:

* each signal's selection counts and the overlaps of the selections as Venn regions;
* the words each signal selects most often, and how often each such word is selected;
* the tokens no signal selected (the ones that got no gradient under a hard mask);
* summaries of each signal's scores, on selected and unselected tokens;
* optionally, the part-of-speech distribution of each signal's selected words (spaCy).

Words: byte-level BPE splits words into pieces; a *word* is the run of tokens from one token
that starts with whitespace (``Ġ``, ``Ċ``) to the next, a tag token (``<|im_end|>``,
``<think>``) being a word of its own. A word is *selected by a signal* when any of its tokens is.

Everything here is a function of the loaded records; ``videoktr analyze`` only parses its
arguments, calls :func:`load_rollouts` and :func:`analyze_rollouts`, and prints
:meth:`RolloutAnalysis.format_text`.
"""

from __future__ import annotations

import functools
import html
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from .html import (
    example_block,
    html_page,
    ordered_signals,
    render_token_spans,
    signal_legend,
)

# Fields without which no statistic can be computed; the others are shown where present.
REQUIRED_FIELDS = ("tokens", "scores", "signal_masks")

POS_INSTALL_HINT = "pip install 'videoktr[pos]' then python -m spacy download en_core_web_sm"

# A POS tagger maps the words of one completion, in order, to one coarse tag per word
# (Universal POS tags: NOUN, VERB, ADJ, ...). Tagging a completion's words together, rather
# than one by one, lets the tagger use their context.
PosTagger = Callable[[Sequence[str]], Sequence[str]]


class RolloutDumpError(ValueError):
    """A rollout dump file is missing, or one of its lines is not a valid record."""


class PosTaggerUnavailable(RuntimeError):
    """spaCy or its English model is not installed; the message says how to install them."""


# ---------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Rollout:
    """One completion of a rollout dump: one JSONL line (``file``, ``line``), validated.

    Fields other than ``tokens``, ``scores`` and ``signal_masks`` are optional (``None`` or
    empty when the line lacks them).
    """

    file: str
    line: int
    tokens: list[str]
    scores: dict[str, list[float]]
    signal_masks: dict[str, list[bool]]
    selected: list[float] | None = None
    step: int | None = None
    prompt_id: str | None = None
    problem_type: str | None = None
    completion: str = ""
    reward: float | None = None
    rewards: dict[str, float] = field(default_factory=dict)
    advantage: float | None = None

    @property
    def source(self) -> str:
        """``"FILE line N"``, for messages."""
        return f"{self.file} line {self.line}"


def dump_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The dump files named by ``paths``: each a ``.jsonl`` file, or a directory whose
    ``*.jsonl`` files are taken in name order (``step000010-rank0`` before ``step000020-rank0``).
    A missing path, or a directory with no dump, raises :class:`RolloutDumpError`."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                raise RolloutDumpError(f"{path}: directory holds no *.jsonl rollout dump")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RolloutDumpError(f"{path}: no such file or directory")
    if not files:
        raise RolloutDumpError("no rollout dump given")
    return files


def load_rollouts(paths: str | Path | Iterable[str | Path]) -> list[Rollout]:
    """Every record of the dump files named by ``paths`` (see :func:`dump_files`), in file
    order then line order. Blank lines are skipped; any other line that is not a valid record
    raises :class:`RolloutDumpError` naming the file, the line and what is wrong."""
    rollouts = []
    for path in dump_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise RolloutDumpError(f"{path}: cannot read as UTF-8 text ({error})") from error
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                rollouts.append(parse_rollout(line, path, number))
    return rollouts


def parse_rollout(text: str, file: str | Path = "<string>", line: int = 1) -> Rollout:
    """Line ``line`` of dump ``file``, whose content is ``text``, as a :class:`Rollout`. Any
    error starts with ``"FILE line N:"``.

    Checks what the statistics rely on: the required fields exist, ``tokens`` is a list of
    strings, and every per-token list (each signal's scores and mask, ``selected``) has one
    value per token. ``NaN`` (as ``json.dumps`` writes it) and ``null`` scores both mean
    "unavailable".
    """
    source = f"{file} line {line}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise RolloutDumpError(f"{source}: invalid JSON at column {error.colno}: {error.msg}") from error
    if not isinstance(record, dict):
        raise RolloutDumpError(f"{source}: expected a JSON object, got {type(record).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise RolloutDumpError(f"{source}: missing field{plural} {', '.join(map(repr, missing))}")

    tokens = record["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise RolloutDumpError(f"{source}: field 'tokens' must be a list of strings")
    length = len(tokens)

    def per_token(name: str, values: Any, convert: Callable[[Any], Any]) -> list:
        if not isinstance(values, list):
            raise RolloutDumpError(f"{source}: field {name!r} must be a list, got {type(values).__name__}")
        if len(values) != length:
            raise RolloutDumpError(f"{source}: field {name!r} has {len(values)} values for {length} tokens")
        try:
            return [convert(value) for value in values]
        except (TypeError, ValueError) as error:
            raise RolloutDumpError(f"{source}: field {name!r}: {error}") from error

    def per_signal(name: str, convert: Callable[[Any], Any]) -> dict[str, list]:
        mapping = record[name]
        if not isinstance(mapping, dict):
            raise RolloutDumpError(f"{source}: field {name!r} must be an object {{signal: [one value per token]}}")
        return {signal: per_token(f"{name}.{signal}", values, convert) for signal, values in mapping.items()}

    selected = record.get("selected")
    return Rollout(
        file=str(file),
        line=line,
        tokens=tokens,
        scores=per_signal("scores", _as_score),
        signal_masks=per_signal("signal_masks", _as_flag),
        selected=None if selected is None else per_token("selected", selected, _as_number),
        step=record.get("step"),
        prompt_id=record.get("prompt_id"),
        problem_type=record.get("problem_type"),
        completion=record.get("completion") or "",
        reward=record.get("reward"),
        rewards=record.get("rewards") or {},
        advantage=record.get("advantage"),
    )


def _as_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected numbers, got {value!r}")
    return float(value)


def _as_score(value: Any) -> float:
    return math.nan if value is None else _as_number(value)


def _as_flag(value: Any) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise TypeError(f"expected true/false, got {value!r}")


# ---------------------------------------------------------------------------- words

@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE writes each byte as a printable character (transformers'
    ``bytes_to_unicode`` table); inverted, the pieces of a word decode to its exact UTF-8 text.
    Imported on first use: the module pulls in the tokenizers library."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {character: byte for byte, character in bytes_to_unicode().items()}
# A token that is one whole tag: a special token (``<|im_end|>``) or an added tag token
# (``<think>``, ``</answer>`` in some vocabularies) is a word of its own.
_TAG_TOKEN = re.compile(r"^<[^<>\s]+>$")
# Sentence punctuation glued to a word ("red." "first,") is not part of it for counting.
_EDGE_PUNCTUATION = ".,;:!?\"'()[]"


def decode_tokens(tokens: Sequence[str]) -> str:
    """The text of consecutive byte-level BPE tokens. Characters outside the byte table (added
    tokens such as ``<think>``) are taken as they are; invalid UTF-8 becomes U+FFFD."""
    data = bytearray()
    for token in tokens:
        for character in token:
            byte = _byte_decoder().get(character)
            data.extend(character.encode("utf-8") if byte is None else bytes([byte]))
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Word:
    """Tokens ``start`` to ``end - 1`` of a completion, their decoded ``text`` (surrounding
    whitespace removed) and the signals that selected at least one of them."""

    text: str
    start: int
    end: int
    selected_by: frozenset[str]

    @property
    def key(self) -> str:
        """The form words are counted under: lower case, sentence punctuation at either end
        removed (``"Red."`` counts as ``"red"``; a word made only of punctuation stays as it is)."""
        lowered = self.text.lower()
        return lowered.strip(_EDGE_PUNCTUATION) or lowered


def merge_words(tokens: Sequence[str], signal_masks: Mapping[str, Sequence[bool]]) -> list[Word]:
    """Group a completion's tokens into words (see the module docstring). A token that starts
    with whitespace, follows a token that ends with whitespace, or is or follows a whole tag
    token (``<|im_end|>``, ``<think>``) starts a new word. Words made only of whitespace are
    dropped."""
    boundaries = []
    for index, token in enumerate(tokens):
        text = decode_tokens([token])
        previous = tokens[index - 1] if index else None
        if (
            index == 0
            or text[:1].isspace()
            or decode_tokens([previous])[-1:].isspace()
            or _TAG_TOKEN.match(token)
            or _TAG_TOKEN.match(previous)
        ):
            boundaries.append(index)
    boundaries.append(len(tokens))
    words = []
    for start, end in pairwise(boundaries):
        text = decode_tokens(tokens[start:end]).strip()
        if text:
            chosen = frozenset(s for s, mask in signal_masks.items() if any(mask[start:end]))
            words.append(Word(text, start, end, chosen))
    return words


# ---------------------------------------------------------------------------- statistics


def dump_signals(rollouts: Iterable[Rollout]) -> list[str]:
    """The signals with a selection mask in any record (visual, temporal, entropy first)."""
    return ordered_signals({s for rollout in rollouts for s in rollout.signal_masks})


def selection_counts(rollouts: Sequence[Rollout], signals: Sequence[str] | None = None) -> dict[str, int]:
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


def _selected_by(rollout: Rollout, index: int, signals: Sequence[str]) -> tuple[str, ...]:
    # A signal missing from a record's masks (e.g. a dump from a run without it) selected nothing there.
    return tuple(s for s in signals if s in rollout.signal_masks and rollout.signal_masks[s][index])


def region_name(region: Sequence[str], signals: Sequence[str]) -> str:
    """``"none"``, ``"visual only"``, ``"visual & temporal only"``, ... and, for the region of
    every signal, their names joined without "only" (``"visual & temporal & entropy"``)."""
    if not region:
        return "none"
    joined = " & ".join(region)
    return joined if len(region) == len(signals) else f"{joined} only"


def selection_regions(rollouts: Sequence[Rollout], signals: Sequence[str] | None = None) -> dict[str, int]:
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


def all_words(rollouts: Iterable[Rollout]) -> list[list[Word]]:
    """The words of every record (see :func:`merge_words`), one list per record."""
    return [merge_words(rollout.tokens, rollout.signal_masks) for rollout in rollouts]


def top_selected_words(
    rollouts: Sequence[Rollout], top: int = 20, signals: Sequence[str] | None = None,
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
    """The tokens no signal selected: under a hard mask, the ones that receive no gradient.

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
    rollouts: Sequence[Rollout], top: int = 20, signals: Sequence[str] | None = None,
    words: list[list[Word]] | None = None,
) -> UnselectedStats:
    """Counts, words and mean scores of the tokens no signal selected (see :class:`UnselectedStats`)."""
    signals = dump_signals(rollouts) if signals is None else list(signals)
    words = all_words(rollouts) if words is None else words
    scored = ordered_signals({s for rollout in rollouts for s in rollout.scores})
    values = {s: {"key": [], "unselected": []} for s in scored}
    tokens = unselected = 0
    for rollout in rollouts:
        for index in range(len(rollout.tokens)):
            group = "key" if _selected_by(rollout, index, signals) else "unselected"
            tokens += 1
            unselected += group == "unselected"
            for signal, scores in rollout.scores.items():
                if not math.isnan(scores[index]):
                    values[signal][group].append(scores[index])
    occurrences = Counter(word.key for record in words for word in record)
    never = Counter(word.key for record in words for word in record if not word.selected_by & set(signals))
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


def score_summaries(rollouts: Sequence[Rollout]) -> dict[str, ScoreSummary]:
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


def load_pos_tagger(model: str = "en_core_web_sm") -> PosTagger:
    """A :data:`PosTagger` backed by spaCy's ``model``. Raises :class:`PosTaggerUnavailable`,
    whose message says how to install them, when spaCy or the model is missing."""
    try:
        import spacy
        from spacy.tokens import Doc
    except ImportError as error:
        raise PosTaggerUnavailable(
            f"part-of-speech statistics need spaCy, which is not installed: {POS_INSTALL_HINT}"
        ) from error
    try:
        # The parser and entity recogniser play no part in POS tags; skipping them is faster.
        nlp = spacy.load(model, disable=["parser", "ner"])
    except OSError as error:
        raise PosTaggerUnavailable(
            f"part-of-speech statistics need spaCy's English model {model!r}, which is not installed: "
            f"{POS_INSTALL_HINT}"
        ) from error

    def tag(words: Sequence[str]) -> list[str]:
        # A Doc built from our words keeps spaCy from re-tokenising them: one tag per word.
        return [token.pos_ for token in nlp(Doc(nlp.vocab, words=list(words)))]

    return tag


def pos_distribution(
    rollouts: Sequence[Rollout], tagger: PosTagger, signals: Sequence[str] | None = None,
    words: list[list[Word]] | None = None,
) -> dict[str, dict[str, int]]:
    """Part-of-speech counts of each signal's selected words, and of ``"all"`` words (the
    baseline a signal's distribution is compared with).

    Each completion's words (their text, case and glued punctuation kept, which helps a tagger)
    are tagged together by ``tagger`` (see :data:`PosTagger`; e.g. :func:`load_pos_tagger`),
    which must return one tag per word. Tags are counted over word
    occurrences; each mapping lists the most frequent tag first.
    """
    signals = dump_signals(rollouts) if signals is None else list(signals)
    words = all_words(rollouts) if words is None else words
    counts = {name: Counter() for name in [*signals, "all"]}
    for rollout, record in zip(rollouts, words):
        if not record:
            continue
        tags = list(tagger([word.text for word in record]))
        if len(tags) != len(record):
            raise ValueError(f"{rollout.source}: the POS tagger returned {len(tags)} tags for {len(record)} words")
        for word, tag in zip(record, tags):
            counts["all"][tag] += 1
            for signal in word.selected_by & set(signals):
                counts[signal][tag] += 1
    return {name: dict(sorted(c.items(), key=lambda item: (-item[1], item[0]))) for name, c in counts.items()}


# ---------------------------------------------------------------------------- the report


def weighting_of(rollouts: Sequence[Rollout]) -> str:
    """How the dumped run weighted tokens: ``"hard"`` (0/1 mask), ``"soft"`` (weights in
    between) or ``"none"`` (every token trained: ``selected`` is null)."""
    if all(rollout.selected is None for rollout in rollouts):
        return "none"
    weights = [w for rollout in rollouts if rollout.selected is not None for w in rollout.selected]
    return "hard" if all(w in (0.0, 1.0) for w in weights) else "soft"


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files, "completions": self.completions, "tokens": self.tokens, "steps": self.steps,
            "signals": self.signals, "weighting": self.weighting, "selected_tokens": self.selected_tokens,
            "regions": self.regions,
            "top_words": {s: [w.to_dict() for w in ws] for s, ws in self.top_words.items()},
            "unselected": self.unselected.to_dict(),
            "scores": {s: asdict(summary) for s, summary in self.scores.items()},
            "pos": self.pos,
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
        stats = self.unselected
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
    rollouts: Sequence[Rollout], top: int = 20, pos_tagger: PosTagger | None = None
) -> RolloutAnalysis:
    """Every statistic of this module over ``rollouts`` (see :func:`load_rollouts`); the POS
    distribution only when a ``pos_tagger`` is given (e.g. :func:`load_pos_tagger`)."""
    signals = dump_signals(rollouts)
    words = all_words(rollouts)
    return RolloutAnalysis(
        files=list(dict.fromkeys(r.file for r in rollouts)),
        completions=len(rollouts),
        tokens=sum(len(r.tokens) for r in rollouts),
        steps=sorted({r.step for r in rollouts if isinstance(r.step, int)}),
        signals=signals,
        weighting=weighting_of(rollouts),
        selected_tokens=selection_counts(rollouts, signals),
        regions=selection_regions(rollouts, signals),
        top_words=top_selected_words(rollouts, top, signals, words),
        unselected=unselected_stats(rollouts, top, signals, words),
        scores=score_summaries(rollouts),
        pos=None if pos_tagger is None else pos_distribution(rollouts, pos_tagger, signals, words),
    )


def write_rollouts_html(
    path: str | Path, analysis: RolloutAnalysis, rollouts: Sequence[Rollout], max_completions: int = 200
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
