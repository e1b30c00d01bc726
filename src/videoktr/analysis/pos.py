"""Part-of-speech distribution of each signal's selected words, with spaCy (optional).

The paper reports that visual tokens are mostly nouns, temporal ones verbs and entropy ones
adverbs more often than the baseline; this module counts the same over rollout dumps. spaCy
and its English model are an optional extra: ``pip install 'videoktr[pos]'`` then
``python -m spacy download en_core_web_sm``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from ..data.rollouts import RolloutRecord
from .statistics import dump_signals
from .words import Word, all_words

__all__ = ["POS_INSTALL_HINT", "PosTagger", "PosTaggerUnavailable", "load_pos_tagger", "pos_distribution"]

POS_INSTALL_HINT = "pip install 'videoktr[pos]' then python -m spacy download en_core_web_sm"

# A POS tagger maps the words of one completion, in order, to one coarse tag per word
# (Universal POS tags: NOUN, VERB, ADJ, ...). Tagging a completion's words together, rather
# than one by one, lets the tagger use their context.
PosTagger = Callable[[Sequence[str]], Sequence[str]]


class PosTaggerUnavailable(RuntimeError):
    """spaCy or its English model is not installed; the message says how to install them."""


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
    rollouts: Sequence[RolloutRecord], tagger: PosTagger, signals: Sequence[str] | None = None,
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
