"""Questions about synthetic scenes, with reasoning traces whose every word carries a known label.

Why. Video-KTR scores each generated token by how much its probability depends on the video
(visual signal: the video removed), on the order of the frames (temporal signal: the frames
shuffled), or on neither. To check those scores against ground truth, each row of the synthetic
world carries a reference trace ``<think>...</think><answer>X</answer>`` in which every word is
labelled ``visual``, ``temporal`` or ``neutral``.

Question kinds and families (``FAMILIES``; each is multiple choice with four options A-D, one
correct, the distractors distinct and drawn from the same vocabulary as the answer, listed in
the fixed ``OPTION_ORDER``; see there for why):

* ``visual``: answerable from any single frame (every shape is visible in every frame):
  ``colour_of_shape`` ("What colour is the circle?"), ``shape_of_colour`` ("What shape is the red
  object?"), ``count`` ("How many shapes are in the video?").
* ``temporal``: answerable only from the order of the frames; no single frame, and not even the
  unordered set of frames, tells the answer (the scene played backwards has the same frames and
  another answer, see ``videoktr.synthetic.world``): ``appeared_first`` ("Which shape appeared
  first?"), ``direction`` ("In which direction does the red circle move?"), ``appeared_after``
  ("Which shape appeared next after the blue square?").
* ``both``: needs the order and what the shapes look like: ``colour_of_first`` ("What colour was
  the shape that appeared first?"), ``colour_of_mover`` ("What colour is the shape that moves
  left?").

Two answers are never correct for one question, and some options can never be right because the
world never draws them: ``"diamond"`` among the kinds and ``"four"`` among the counts (the world
has three kinds and at most three shapes; four options are needed). A model can learn that they
are never the answer (in the fixed order they are always option D); the remaining three are
equally likely.

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

One trace per family, shapes always named in the fixed colour order. Every trace opens with
"I see <the shapes, in colour order>." and ends with the sentence that names the answer, so the
answer letter follows from the word right before it. Why: the demo's two-layer policy, taught
three wordings per family with shapes in random order, mixed the wordings when it generated
("I question asks which shape ...") and named the same shape twice; a listing in random order
also made its colour words lean on the order of the frames under the temporal signal, though
playing the clip backwards keeps them (on the temporal traces they moved by 0.26 nats on average
when the frames were shuffled, half as much as the words the order decides). In the colour
order the listing is a function of which shapes are there (0.06 nats in the same stages). And
a trace that stated the letter twice ("The answer is C.</think><answer>C</answer>") taught the
policy to copy it, which RL then unlearned: the reward reads only the answer block.

Every trace about a queue (``appeared_first``, ``appeared_after``, ``colour_of_first``) states
the first shape's colour ("The first shape to appear is red.") before anything else about the
order. Why first: once the trace has written the order down, the words after it can be copied
from the text, and a model scored on them with the frames shuffled shows no dependence on the
order. The first statement of an order-dependent fact is the one a model must read off the
video in order (``benchmarks/order_probe.py`` shows the demo's model can learn it).

Everything is deterministic: ``make_question(scene, spec)`` is a pure function, and
``sample_question`` draws scene and spec from a ``numpy.random.Generator``.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .world import (
    COLOURS,
    DIRECTIONS,
    FRAME_COUNTS,
    KINDS,
    Scene,
    Shape,
    opposite_direction,
    reverse_frames,
    sample_mover_scene,
    sample_opposite_movers_scene,
    sample_queue_scene,
    sample_still_scene,
)

__all__ = [
    "ANSWER_LABELS",
    "COUNT_WORDS",
    "DISTRACTOR_KIND",
    "FAMILIES",
    "LABELS",
    "LETTERS",
    "OPTION_ORDER",
    "ORDINALS",
    "QUESTION_KINDS",
    "TEMPORAL_WORDS",
    "VISUAL_WORDS",
    "Family",
    "Question",
    "QuestionSpec",
    "label_word",
    "make_question",
    "question_row",
    "rebuild_question",
    "sample_question",
    "world_corpus",
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
_OPTION_COUNT = len(LETTERS)


def label_word(word: str) -> str:
    """Label of a trace word that the order does not decide (rule 3 above): ``visual`` if its
    core (tags removed, punctuation stripped, lower-cased) is in ``VISUAL_WORDS``, else
    ``neutral``."""
    core = _TAG.sub("", word).strip(string.punctuation).lower()
    return "visual" if core in VISUAL_WORDS else "neutral"


# ----------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class QuestionSpec:
    """Everything about a question that is not the scene: with the scene it fixes the row.

    Attributes:
        family: a key of ``FAMILIES``.
        target: index in ``scene.shapes`` of the shape the question names (``colour_of_shape``,
            ``shape_of_colour``, ``direction``, ``appeared_after``), else ``None``.
        direction: the direction the question names (``colour_of_mover``), else ``None``.
        question_variant, trace_variant: which wording of the question and of the trace.
        option_seed: seeds the choice of distractors (shape descriptions; the other families
            offer their whole vocabulary). The choice depends only on what the shapes look
            like, so playing a clip backwards keeps the options and moves only the answer
            letter. The options are listed in ``OPTION_ORDER``, not shuffled.
    """

    family: str
    target: int | None = None
    direction: str | None = None
    question_variant: int = 0
    trace_variant: int = 0
    option_seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Question:
    """A multiple-choice question about one scene, with its labelled reference trace.

    ``process`` is ``"<think>...</think>"`` (tags included, as Video-R1's CoT data writes it),
    ``solution`` is ``"<answer>B</answer>"`` and ``trace == process + solution``.
    ``trace_words`` pairs every space-separated word of ``trace`` with its label, so
    ``" ".join(w for w, _ in trace_words) == trace``.
    """

    spec: QuestionSpec
    kind: str
    problem: str
    options: tuple[str, ...]
    answer_index: int
    sentences: tuple[str, ...]
    process: str
    solution: str
    trace: str
    trace_words: tuple[tuple[str, str], ...]

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def letter(self) -> str:
        return LETTERS[self.answer_index]

    @property
    def answer(self) -> str:
        """The correct option's text, e.g. ``"red"``."""
        return self.options[self.answer_index]

    @property
    def labelled_options(self) -> list[str]:
        """``["A. red", "B. blue", ...]``, as Video-R1 writes options."""
        return [f"{LETTERS[i]}. {option}" for i, option in enumerate(self.options)]


@dataclass(frozen=True)
class Family:
    """A question family: its kind, wordings, scene sampler and answer logic.

    ``sample(rng)`` draws a scene and the spec fields that depend on it (``target``,
    ``direction``); ``build(scene, spec, rng)`` checks the scene suits the family and returns
    the four candidate option texts, the correct one, and the values of the template slots.
    """

    name: str
    kind: str
    questions: tuple[str, ...]
    traces: tuple[tuple[str, ...], ...]
    sample: Callable[[np.random.Generator], tuple[Scene, dict[str, Any]]]
    build: Callable[[Scene, QuestionSpec, np.random.Generator], tuple[list[str], str, dict]]


# ----------------------------------------------------------------------------- text pieces


def _join(items: Sequence[str]) -> str:
    """``"x"``, ``"x and y"``, ``"x, y and z"``."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _by_colour(description: str) -> int:
    """Sort key: a description's place in the fixed colour order (``"red circle"`` -> 0)."""
    return list(COLOURS).index(description.split(" ")[0])


def _listing(descriptions: Sequence[str]) -> str:
    """``"a red circle, a green square and a blue triangle"``: always in the colour order."""
    return _join([f"a {description}" for description in sorted(descriptions, key=_by_colour)])


def _order_clauses(descriptions: Sequence[str], ranks: Sequence[int]) -> str:
    """``"The red circle appeared second and the blue square appeared first"`` (colour order)."""
    pairs = sorted(zip(descriptions, ranks, strict=True), key=lambda pair: _by_colour(pair[0]))
    parts = [f"the {description} appeared {ORDINALS[rank]}" for description, rank in pairs]
    return _capitalise(_join(parts))


def _mover_clauses(descriptions: Sequence[str], motions: Sequence[str]) -> str:
    """``"The red circle moves left and the blue square moves right"`` (colour order)."""
    pairs = sorted(zip(descriptions, motions, strict=True), key=lambda pair: _by_colour(pair[0]))
    parts = [f"the {description} moves {motion}" for description, motion in pairs]
    return _capitalise(_join(parts))


def _count_phrase(count: int) -> str:
    return f"{COUNT_WORDS[count - 1]} shape{'s' if count > 1 else ''}"


# ----------------------------------------------------------------------------- checks


class _Unsuitable(ValueError):
    pass


def _fail(family: str, reason: str) -> _Unsuitable:
    return _Unsuitable(f"family {family!r}: {reason}")


def _require_distinct_looks(scene: Scene, family: str) -> None:
    if not scene.shapes:
        raise _fail(family, "the scene has no shapes")
    colours = [shape.colour for shape in scene.shapes]
    kinds = [shape.kind for shape in scene.shapes]
    if len(set(colours)) != len(colours) or len(set(kinds)) != len(kinds):
        raise _fail(family, "needs shapes of distinct colours and distinct kinds")


def _require_visible_throughout(scene: Scene, indices: Sequence[int], family: str) -> None:
    for index in indices:
        shape = scene.shapes[index]
        if shape.appear != 0 or shape.disappear is not None:
            raise _fail(family, f"the {shape.description} must be visible in every frame")


def _target(scene: Scene, spec: QuestionSpec) -> Shape:
    if spec.target is None or not 0 <= spec.target < len(scene.shapes):
        raise _fail(
            spec.family,
            f"target must index one of the {len(scene.shapes)} shapes, got {spec.target!r}",
        )
    return scene.shapes[spec.target]


def _appearance_ranks(scene: Scene, family: str) -> list[int]:
    """Rank of each shape by appear frame (0 = first); the appear frames must differ."""
    appears = [shape.appear for shape in scene.shapes]
    if len(set(appears)) != len(appears):
        raise _fail(family, "needs shapes that appear at distinct frames")
    order = sorted(range(len(appears)), key=appears.__getitem__)
    return [order.index(i) for i in range(len(appears))]


def _first_colour(scene: Scene, ranks: Sequence[int]) -> str:
    return scene.shapes[list(ranks).index(0)].colour


def _description_options(rng: np.random.Generator, scene: Scene, shown: Sequence[str]) -> list[str]:
    """``shown`` descriptions plus distractors up to four: first recombinations of the scene's
    colours and kinds ("blue circle" beside a red circle and a blue square), then any other
    colour-kind pair; never a shape of the scene itself."""
    present = {shape.description for shape in scene.shapes}
    recombined = [
        f"{shape.colour} {other.kind}"
        for shape in scene.shapes
        for other in scene.shapes
        if f"{shape.colour} {other.kind}" not in present
    ]
    others = [
        f"{colour} {kind}"
        for colour in COLOURS
        for kind in KINDS
        if f"{colour} {kind}" not in present and f"{colour} {kind}" not in recombined
    ]
    pool = [recombined[i] for i in rng.permutation(len(recombined))]
    pool += [others[i] for i in rng.permutation(len(others))]
    return list(shown) + pool[: _OPTION_COUNT - len(shown)]


# ----------------------------------------------------------------------------- families
# Each build returns (candidates, answer, slots); ``_compose`` adds the slot ``answer`` (the
# correct option's text). Trace templates: lists of sentences; the last one names the answer
# and the answer block follows it (the answer word, see the labelling rule).


def _descriptions(scene: Scene) -> list[str]:
    return [shape.description for shape in scene.shapes]


def _build_colour_of_shape(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    _require_visible_throughout(scene, range(len(scene.shapes)), spec.family)
    target = _target(scene, spec)
    slots = {
        "kind": target.kind,
        "colour": target.colour,
    }
    return list(COLOURS), target.colour, slots


def _build_shape_of_colour(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    _require_visible_throughout(scene, range(len(scene.shapes)), spec.family)
    target = _target(scene, spec)
    slots = {
        "kind": target.kind,
        "colour": target.colour,
    }
    return [*KINDS, DISTRACTOR_KIND], target.kind, slots


def _build_count(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    _require_visible_throughout(scene, range(len(scene.shapes)), spec.family)
    count = len(scene.shapes)
    slots = {"count_phrase": _count_phrase(count)}
    return list(COUNT_WORDS), COUNT_WORDS[count - 1], slots


def _build_appeared_first(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    if len(scene.shapes) < 2:
        raise _fail(spec.family, "needs at least two shapes")
    ranks = _appearance_ranks(scene, spec.family)
    descriptions = _descriptions(scene)
    slots = {"first_colour": _first_colour(scene, ranks)}
    answer = descriptions[ranks.index(0)]
    return _description_options(rng, scene, descriptions), answer, slots


def _build_appeared_after(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    if len(scene.shapes) < 3:
        raise _fail(spec.family, "needs three shapes (with two, the other shape is the answer)")
    ranks = _appearance_ranks(scene, spec.family)
    target = _target(scene, spec)
    target_rank = ranks[spec.target]
    if target_rank == len(ranks) - 1:
        raise _fail(spec.family, f"the {target.description} appeared last: nothing came after it")
    descriptions = _descriptions(scene)
    answer = descriptions[ranks.index(target_rank + 1)]
    shown = [d for i, d in enumerate(descriptions) if i != spec.target]
    slots = {
        "target": target.description,
        "first_colour": _first_colour(scene, ranks),
        "order_clauses": _order_clauses(descriptions, ranks),
    }
    candidates = _description_options(rng, scene, shown)
    return candidates, answer, slots


def _build_colour_of_first(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    if len(scene.shapes) < 2:
        raise _fail(spec.family, "needs at least two shapes")
    ranks = _appearance_ranks(scene, spec.family)
    first = _first_colour(scene, ranks)
    return list(COLOURS), first, {"first_colour": first}


def _build_direction(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    target = _target(scene, spec)
    if target.motion == "static":
        raise _fail(spec.family, f"the {target.description} does not move")
    _require_visible_throughout(scene, [spec.target], spec.family)
    slots = {
        "target": target.description,
        "direction": target.motion,
        "opposite": opposite_direction(target.motion),
    }
    return list(DIRECTIONS), target.motion, slots


def _build_colour_of_mover(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    if spec.direction not in DIRECTIONS:
        raise _fail(
            spec.family, f"direction must be one of {', '.join(DIRECTIONS)}, got {spec.direction!r}"
        )
    movers = [i for i, shape in enumerate(scene.shapes) if shape.motion != "static"]
    if len(movers) < 2:
        raise _fail(spec.family, "needs at least two moving shapes")
    _require_visible_throughout(scene, movers, spec.family)
    matching = [i for i in movers if scene.shapes[i].motion == spec.direction]
    if len(matching) != 1:
        raise _fail(
            spec.family, f"needs exactly one shape moving {spec.direction}, found {len(matching)}"
        )
    answer = scene.shapes[matching[0]].colour
    slots = {
        "question_direction": spec.direction,
        "mover_clauses": _mover_clauses(
            [scene.shapes[i].description for i in movers], [scene.shapes[i].motion for i in movers]
        ),
        "colour": answer,
    }
    return list(COLOURS), answer, slots


def _sample_still(rng):
    scene = sample_still_scene(rng)
    return scene, {"target": int(rng.integers(len(scene.shapes)))}


def _sample_count(rng):
    return sample_still_scene(rng), {}


def _sample_queue(rng):
    num_frames = int(rng.choice(np.asarray(FRAME_COUNTS)))
    num_shapes = 2 if num_frames < 10 else int(rng.integers(2, 4))  # 3 need >= 10 frames
    return sample_queue_scene(rng, num_shapes, num_frames), {}


def _sample_queue_of_three(rng):
    scene = sample_queue_scene(rng, 3)
    # The middle shape: "after" the first would presuppose the reversed clip impossible (there
    # the first is last), which would leak the order; the middle one stays in the middle.
    middle = sorted(range(3), key=lambda i: scene.shapes[i].appear)[1]
    return scene, {"target": middle}


def _sample_mover(rng):
    scene, mover = sample_mover_scene(rng)
    return scene, {"target": mover}


def _sample_opposite_movers(rng):
    scene = sample_opposite_movers_scene(rng)
    movers = [shape.motion for shape in scene.shapes if shape.motion != "static"]
    return scene, {"direction": str(rng.choice(movers))}


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="colour_of_shape",
            kind="visual",
            questions=(
                "What colour is the {kind}?",
                "Which colour does the {kind} have?",
                "What is the colour of the {kind} in the video?",
            ),
            traces=(
                ("I see {listing}.", "The {kind} is {colour}."),
            ),
            sample=_sample_still,
            build=_build_colour_of_shape,
        ),
        Family(
            name="shape_of_colour",
            kind="visual",
            questions=(
                "What shape is the {colour} object?",
                "Which shape is {colour}?",
                "What kind of shape is {colour} in the video?",
            ),
            traces=(
                ("I see {listing}.", "The {colour} shape is a {kind}."),
            ),
            sample=_sample_still,
            build=_build_shape_of_colour,
        ),
        Family(
            name="count",
            kind="visual",
            questions=(
                "How many shapes are in the video?",
                "How many shapes can be seen in the video?",
                "How many different shapes does the video show?",
            ),
            traces=(
                ("I see {listing}.", "That makes {count_phrase}."),
            ),
            sample=_sample_count,
            build=_build_count,
        ),
        Family(
            name="appeared_first",
            kind="temporal",
            questions=(
                "Which shape appeared first?",
                "Which shape appeared first in the video?",
                "Which of these shapes was the first to appear?",
            ),
            traces=(
                (
                    "I see {listing}.",
                    "The first shape to appear is {first_colour}.",
                    "So it is the {answer}.",
                ),
            ),
            sample=_sample_queue,
            build=_build_appeared_first,
        ),
        Family(
            name="direction",
            kind="temporal",
            questions=(
                "In which direction does the {target} move?",
                "Which way does the {target} move?",
                "Where does the {target} move during the video?",
            ),
            traces=(
                (
                    "I see {listing}.",
                    "The {target} starts further {opposite} and ends further {direction}.",
                    "It moved {direction}.",
                ),
            ),
            sample=_sample_mover,
            build=_build_direction,
        ),
        Family(
            name="appeared_after",
            kind="temporal",
            questions=(
                "Which shape appeared next after the {target}?",
                "What appeared immediately after the {target}?",
                "Which shape was the next to appear after the {target}?",
            ),
            traces=(
                (
                    "I see {listing}.",
                    "The first shape to appear is {first_colour}.",
                    "{order_clauses}.",
                    "Next after the {target} came the {answer}.",
                ),
            ),
            sample=_sample_queue_of_three,
            build=_build_appeared_after,
        ),
        Family(
            name="colour_of_first",
            kind="both",
            questions=(
                "What colour was the shape that appeared first?",
                "What colour is the first shape to appear?",
                "Which colour did the first shape to appear have?",
            ),
            traces=(
                ("I see {listing}.", "The first shape to appear is {first_colour}."),
            ),
            sample=_sample_queue,
            build=_build_colour_of_first,
        ),
        Family(
            name="colour_of_mover",
            kind="both",
            questions=(
                "What colour is the shape that moves {question_direction}?",
                "Which colour does the shape moving {question_direction} have?",
                "What is the colour of the shape moving {question_direction}?",
            ),
            traces=(
                (
                    "I see {listing}.",
                    "{mover_clauses}.",
                    "The shape moving {question_direction} is {colour}.",
                ),
            ),
            sample=_sample_opposite_movers,
            build=_build_colour_of_mover,
        ),
    )
}
assert {family.kind for family in FAMILIES.values()} == set(QUESTION_KINDS)


# ----------------------------------------------------------------------------- questions

# Options are listed in one fixed order, word by word: "A. red B. green C. blue D. yellow" for
# every colour question, descriptions by colour then kind. Why: with shuffled options the
# letter is a pointer into the prompt that the demo's two-layer policy does not learn in
# minutes. Its greedy answer was one letter for all 200 test questions, whatever its reasoning
# said, so accuracy measured only how often that letter was right. With a fixed order the
# letter follows from the answer word, and accuracy measures the reasoning. The answer's
# letter still varies with the answer (the distractors differ between questions).
OPTION_ORDER = (*COLOURS, *KINDS, DISTRACTOR_KIND, *COUNT_WORDS, *DIRECTIONS)


def _option_order_key(option: str) -> list[int]:
    return [OPTION_ORDER.index(word) for word in option.split(" ")]


def _compose(family: Family, scene: Scene, spec: QuestionSpec) -> tuple[tuple[str, ...], int, str, tuple[str, ...]]:
    """``(options, answer_index, problem, trace sentences)`` of ``spec`` asked about ``scene``."""
    rng = np.random.default_rng(spec.option_seed)
    candidates, answer, slots = family.build(scene, spec, rng)
    assert len(set(candidates)) == _OPTION_COUNT and answer in candidates
    options = tuple(sorted(candidates, key=_option_order_key))
    answer_index = options.index(answer)
    # Every trace opens with the listing and closes on the answer: two slots for every family.
    slots = {**slots, "answer": answer, "listing": _listing(_descriptions(scene))}
    problem = family.questions[spec.question_variant].format(**slots)
    sentences = tuple(sentence.format(**slots) for sentence in family.traces[spec.trace_variant])
    return options, answer_index, problem, sentences


def _backwards_words(family: Family, scene: Scene, spec: QuestionSpec) -> list[str] | None:
    """The words of the same question's trace about the clip played backwards (same frames,
    opposite order), or ``None`` when the reversed scene does not suit the family."""
    try:
        options, answer_index, _, sentences = _compose(family, reverse_frames(scene), spec)
    except _Unsuitable:
        return None
    letter = LETTERS[answer_index]
    return ("<think>" + " ".join(sentences) + f"</think><answer>{letter}</answer>").split(" ")


def make_question(scene: Scene, spec: QuestionSpec) -> Question:
    """The question ``spec`` asks about ``scene``, with options, answer and labelled trace.

    Pure and deterministic. Raises ``ValueError`` if the family is unknown, a variant is out of
    range, or the scene does not suit the family (e.g. ``appeared_first`` with two shapes
    appearing in the same frame).
    """
    if spec.family not in FAMILIES:
        raise ValueError(f"unknown family {spec.family!r}; expected one of {', '.join(FAMILIES)}")
    family = FAMILIES[spec.family]
    for name, count in (
        ("question_variant", len(family.questions)),
        ("trace_variant", len(family.traces)),
    ):
        value = getattr(spec, name)
        if not isinstance(value, int) or not 0 <= value < count:
            raise ValueError(f"{name} must be in 0..{count - 1} for {spec.family!r}, got {value!r}")
    options, answer_index, problem, sentences = _compose(family, scene, spec)
    letter = LETTERS[answer_index]
    process = "<think>" + " ".join(sentences) + "</think>"
    solution = f"<answer>{letter}</answer>"
    trace = process + solution
    words = trace.split(" ")
    assert all(words) and words[-1].endswith(f".</think><answer>{letter}</answer>"), trace
    backwards = _backwards_words(family, scene, spec)
    if backwards is not None and len(backwards) != len(words):
        raise AssertionError(f"a trace and its time reversal differ in length: {trace!r}")
    trace_words = tuple(
        (word, "temporal" if backwards is not None and backwards[i] != word else label_word(word))
        for i, word in enumerate(words[:-1])
    ) + ((words[-1], ANSWER_LABELS[family.kind]),)
    return Question(
        spec=spec,
        kind=family.kind,
        problem=problem,
        options=options,
        answer_index=answer_index,
        sentences=sentences,
        process=process,
        solution=solution,
        trace=trace,
        trace_words=trace_words,
    )


def sample_question(
    rng: np.random.Generator, kind: str | None = None, family: str | None = None
) -> tuple[Scene, Question]:
    """Draw a scene and a question about it: from ``family`` if given, else from a family of
    ``kind`` (uniformly), else from a uniformly drawn kind. Wordings are drawn uniformly."""
    if family is None:
        if kind is None:
            kind = str(rng.choice(QUESTION_KINDS))
        if kind not in QUESTION_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(QUESTION_KINDS)}")
        names = [name for name, f in FAMILIES.items() if f.kind == kind]
        family = str(names[int(rng.integers(len(names)))])
    elif family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    elif kind is not None and FAMILIES[family].kind != kind:
        raise ValueError(f"family {family!r} is {FAMILIES[family].kind}, not {kind}")
    chosen = FAMILIES[family]
    scene, fields = chosen.sample(rng)
    spec = QuestionSpec(
        family=family,
        question_variant=int(rng.integers(len(chosen.questions))),
        trace_variant=int(rng.integers(len(chosen.traces))),
        option_seed=int(rng.integers(2**31)),
        **fields,
    )
    return scene, make_question(scene, spec)


def question_row(
    question: Question, scene: Scene, row_id: str, path: str | None = None
) -> dict[str, Any]:
    """The Video-R1 row for ``question``: the fields ``VideoR1Dataset`` reads, then extras.

    ``path`` defaults to ``"./videos/<row_id>.mp4"`` (relative to the dataset file's directory).
    Extras: ``id``, ``kind``, ``family``, ``process``, ``trace``, ``trace_words`` (``[word,
    label]`` pairs), ``scene`` (``Scene.to_dict()``) and ``spec`` (``QuestionSpec.to_dict()``);
    ``rebuild_question(row)`` recomputes the question from the last two.
    """
    return {
        "problem": question.problem,
        "problem_type": "multiple choice",
        "options": question.labelled_options,
        "solution": question.solution,
        "path": f"./videos/{row_id}.mp4" if path is None else path,
        "data_type": "video",
        "id": row_id,
        "kind": question.kind,
        "family": question.family,
        "process": question.process,
        "trace": question.trace,
        "trace_words": [[word, label] for word, label in question.trace_words],
        "num_frames": scene.num_frames,
        "scene": scene.to_dict(),
        "spec": question.spec.to_dict(),
    }


def rebuild_question(row: dict[str, Any]) -> Question:
    """The question of a synthetic row, recomputed from its ``scene`` and ``spec``. Apply a
    counterfactual in between: ``make_question(reverse_frames(Scene.from_dict(row["scene"])),
    QuestionSpec(**row["spec"]))``."""
    return make_question(Scene.from_dict(row["scene"]), QuestionSpec(**row["spec"]))


# ----------------------------------------------------------------------------- corpus


def _looks_tuples(count: int) -> Iterator[tuple[str, ...]]:
    """Every ordered tuple of ``count`` descriptions with distinct colours and kinds."""
    for colours in itertools.permutations(COLOURS, count):
        for kinds in itertools.permutations(KINDS, count):
            yield tuple(f"{c} {k}" for c, k in zip(colours, kinds, strict=True))


def _slot_domains() -> list[tuple[tuple[str, ...], list[tuple[str, ...]]]]:
    """Every value each template slot can take, as (slot names, value tuples) groups; slots in
    one group vary together (a direction and its opposite)."""
    shapes_1_to_3 = [looks for n in (1, 2, 3) for looks in _looks_tuples(n)]
    order_clauses = [
        _order_clauses(looks, ranks)
        for n in (2, 3)
        for looks in _looks_tuples(n)
        for ranks in itertools.permutations(range(n))
    ]
    mover_clauses = [
        _mover_clauses(looks, (direction, opposite_direction(direction)))
        for looks in _looks_tuples(2)
        for direction in DIRECTIONS
    ]
    single = {
        "colour": list(COLOURS),
        "first_colour": list(COLOURS),
        "kind": list(KINDS),
        "target": [f"{c} {k}" for c in COLOURS for k in KINDS],
        "question_direction": list(DIRECTIONS),
        "count_phrase": [_count_phrase(n) for n in (1, 2, 3)],
        "answer": [f"{c} {k}" for c in COLOURS for k in KINDS],
        "listing": [_listing(looks) for looks in shapes_1_to_3],
        "order_clauses": order_clauses,
        "mover_clauses": mover_clauses,
    }
    groups = [((name,), [(value,) for value in values]) for name, values in single.items()]
    groups.append((("direction", "opposite"), [(d, opposite_direction(d)) for d in DIRECTIONS]))
    return groups


def _fillings(template: str, groups) -> Iterator[str]:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    used = [(names, values) for names, values in groups if fields & set(names)]
    covered = {name for names, _ in used for name in names}
    if fields - covered:
        raise AssertionError(f"no domain for slots {sorted(fields - covered)} in {template!r}")
    for combination in itertools.product(*(values for _, values in used)):
        slots = {}
        for (names, _), value in zip(used, combination, strict=True):
            slots.update(zip(names, value, strict=True))
        yield template.format(**slots)


def world_corpus() -> list[str]:
    """Every text the world can produce, deduplicated and sorted, to train a tokenizer on.

    Holds: each question wording with every value of its slots; every option, bare ("red") and
    labelled ("A. red"); every answer block ("<answer>A</answer>") and the think tags; the
    prompt's instruction lines (``videoktr.data.prompts``); and every trace *sentence* with every
    value of its slots (a trace is its sentences joined by spaces, wrapped in the tags). Slots
    vary independently within a sentence, so some sentences pair values no scene produces ("the
    square is red" beside a listing without a square); they only add word statistics.
    About 20,000 short texts; takes well under a second.
    """
    from videoktr.data.prompts import ANSWER_FORMAT_INSTRUCTIONS, REASONING_INSTRUCTION

    groups = _slot_domains()
    texts: set[str] = {
        "Options:",
        REASONING_INSTRUCTION.format(media="video"),
        ANSWER_FORMAT_INSTRUCTIONS["multiple choice"],
        "<think>",
        "</think>",
    }
    option_texts = [
        *COLOURS,
        *KINDS,
        DISTRACTOR_KIND,
        *COUNT_WORDS,
        *DIRECTIONS,
        *(f"{c} {k}" for c in COLOURS for k in KINDS),
    ]
    for letter in LETTERS:
        texts.add(f"<answer>{letter}</answer>")
        texts.update(f"{letter}. {option}" for option in option_texts)
    texts.update(option_texts)
    for family in FAMILIES.values():
        for template in family.questions:
            texts.update(_fillings(template, groups))
        for trace in family.traces:
            for position, sentence in enumerate(trace):
                filled = list(_fillings(sentence, groups))
                texts.update(filled)
                if position:  # in a trace it follows a space: teach the tokenizer " The" too
                    texts.update(" " + text for text in filled)
    return sorted(texts)
