"""The world's vocabulary and the labelling rule that ground-truth attribution is measured against.

The labelling rule (the ground truth attribution is measured against). A trace is split on
single spaces into words; tags (``<think>``, ``</think>``, ``<answer>``, ``</answer>``) and
punctuation stay attached to the word they touch, and each word gets one label. The rule asks
of each word what decides it, the frames' content or their order, by changing one and keeping
the other:

1. The last word holds the answer and its letter (``"blue.</think><answer>C</answer>"``: every
   trace ends on the sentence that names the answer, and the answer block follows it) and is
   labelled ``ANSWER_LABELS[kind]``: ``visual`` for a visual question, ``temporal`` for a
   temporal *or both* question. A visual question's answer is fixed by any one frame; a
   temporal or both question's is not (every frame is also a frame of the reversed clip, whose
   answer differs), so the order decides it.
2. Every other word that reads differently in the trace of the same question about the clip
   played backwards (``reverse_frames``: the very same frames in the opposite order) is
   labelled ``temporal``: the order decides it. Direction words flip this way ("starts further
   left" reads "starts further right" backwards), and so do ordinals of an appearance order and
   colour words that name an order-dependent fact ("The first shape to appear is red" reads
   "... is blue" backwards, so this "red" is ``temporal``).
3. Every remaining word is ``visual`` if its *core* (tags removed, surrounding punctuation
   stripped, lower-cased: ``"red,"`` -> ``red``) is in ``VISUAL_WORDS`` (colour words, shape
   words and their plurals, count words), whose identity is read off the pixels of a frame;
   otherwise ``neutral``: function words, "I", "see", "is", "shape", and also order words that
   the order does not decide, such as "first" and "appear" in the fixed opening "The first shape
   to appear is", or "starts" and "moved". ``TEMPORAL_WORDS`` lists the world's order
   vocabulary; a word from it is ``temporal`` only when rule 2 says so. Why: the temporal
   signal measures how much a token's probability depends on the order of the frames, and a
   word the template fixes does not depend on it, whatever it means.

The templates use lexicon words only in the lexicon's sense (no "one" as a pronoun, no "right"
meaning correct), so the lexical rule and the counterfactual meaning agree; the tests check it:
recolouring a shape changes only colour words (and the answer word), and playing a temporal clip
backwards changes only temporal words (and the answer word): the direction and order words flip
(left <-> right, up <-> down, first <-> second or first <-> third), the first shape's colour
changes, and the visual words stay as they were. ``videoktr.analysis.token_labels`` carries the
labels from words to tokens; a token of only tags, punctuation or spaces is ``neutral``.
"""

from __future__ import annotations

import re
import string

from .world import COLOURS, DIRECTIONS, KINDS

__all__ = [
    "ANSWER_LABELS",
    "COUNT_WORDS",
    "DISTRACTOR_KIND",
    "LABELS",
    "LETTERS",
    "ORDINALS",
    "QUESTION_KINDS",
    "TEMPORAL_WORDS",
    "VISUAL_WORDS",
    "label_word",
]

QUESTION_KINDS = ("visual", "temporal", "both")
LABELS = ("visual", "temporal", "neutral")
ANSWER_LABELS = {"visual": "visual", "temporal": "temporal", "both": "temporal"}
LETTERS = "ABCD"
COUNT_WORDS = ("one", "two", "three", "four")
ORDINALS = ("first", "second", "third")
DISTRACTOR_KIND = "diamond"  # an option for shape questions; never drawn

VISUAL_WORDS = frozenset(
    [*COLOURS, *KINDS, DISTRACTOR_KIND, *(f"{kind}s" for kind in (*KINDS, DISTRACTOR_KIND))]
    + list(COUNT_WORDS)
)
TEMPORAL_WORDS = frozenset(
    [
        # order
        "first", "second", "third", "last", "next", "then", "after", "before", "earlier",
        "later", "early", "start", "starts", "end", "ends",
        # direction of motion
        *DIRECTIONS,
        # events
        "appear", "appears", "appeared", "disappear", "disappears", "disappeared", "came",
        "come", "move", "moves", "moved", "moving", "shifts",
    ]
)  # fmt: skip
assert not VISUAL_WORDS & TEMPORAL_WORDS

_TAG = re.compile(r"<[^>]*>")


def label_word(word: str) -> str:
    """Label of a trace word that the order does not decide (rule 3 of the module docstring): ``visual`` if its
    core (tags removed, punctuation stripped, lower-cased) is in ``VISUAL_WORDS``, else
    ``neutral``."""
    core = _TAG.sub("", word).strip(string.punctuation).lower()
    return "visual" if core in VISUAL_WORDS else "neutral"
