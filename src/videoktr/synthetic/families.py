"""The question families: what each asks, which scenes it draws, how it finds the answer.

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

These eight make the ``standard`` task; ``videoktr.synthetic.tasks`` adds the filler tasks.

Two answers are never correct for one question, and some options can never be right because the
world never draws them: ``"diamond"`` among the kinds and ``"four"`` among the counts (the world
has three kinds and at most three shapes; four options are needed). A model can learn that they
are never the answer (in the fixed order they are always option D); the remaining three are
equally likely.

Each ``Family`` pairs question wordings and one trace template with a scene sampler
(``videoktr.synthetic.scenes``) and a build function that checks the scene suits the family and
returns the candidate options, the answer and the values of the template's slots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .labels import COUNT_WORDS, DISTRACTOR_KIND, LETTERS, ORDINALS, QUESTION_KINDS
from .scenes import (
    sample_mover_scene,
    sample_opposite_movers_scene,
    sample_queue_scene,
    sample_still_scene,
)
from .world import COLOURS, DIRECTIONS, FRAME_COUNTS, KINDS, Scene, Shape, opposite_direction

__all__ = ["FAMILIES", "Family", "QuestionSpec", "Unsuitable"]

OPTION_COUNT = len(LETTERS)


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
class Family:
    """A question family: its kind, wordings, scene sampler and answer logic.

    ``sample(rng)`` draws a scene and the spec fields that depend on it (``target``,
    ``direction``); ``build(scene, spec, rng)`` checks the scene suits the family and returns
    the four candidate option texts, the correct one, and the values of the template slots.
    ``task``: its world (``tasks.TASKS``); ``neutral_sentences``: trace sentences labelled neutral.
    """

    name: str
    kind: str
    questions: tuple[str, ...]
    traces: tuple[tuple[str, ...], ...]
    sample: Callable[[np.random.Generator], tuple[Scene, dict[str, Any]]]
    build: Callable[[Scene, QuestionSpec, np.random.Generator], tuple[list[str], str, dict]]
    task: str = "standard"
    neutral_sentences: tuple[int, ...] = ()


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


def listing_text(descriptions: Sequence[str]) -> str:
    """``"a red circle, a green square and a blue triangle"``: always in the colour order."""
    return _join([f"a {description}" for description in sorted(descriptions, key=_by_colour)])


def order_clauses_text(descriptions: Sequence[str], ranks: Sequence[int]) -> str:
    """``"The red circle appeared second and the blue square appeared first"`` (colour order)."""
    pairs = sorted(zip(descriptions, ranks, strict=True), key=lambda pair: _by_colour(pair[0]))
    parts = [f"the {description} appeared {ORDINALS[rank]}" for description, rank in pairs]
    return _capitalise(_join(parts))


def mover_clauses_text(descriptions: Sequence[str], motions: Sequence[str]) -> str:
    """``"The red circle moves left and the blue square moves right"`` (colour order)."""
    pairs = sorted(zip(descriptions, motions, strict=True), key=lambda pair: _by_colour(pair[0]))
    parts = [f"the {description} moves {motion}" for description, motion in pairs]
    return _capitalise(_join(parts))


def count_phrase_text(count: int) -> str:
    return f"{COUNT_WORDS[count - 1]} shape{'s' if count > 1 else ''}"


# ----------------------------------------------------------------------------- checks


class Unsuitable(ValueError):
    """The scene does not suit the family (e.g. two shapes appear in the same frame)."""


def _fail(family: str, reason: str) -> Unsuitable:
    return Unsuitable(f"family {family!r}: {reason}")


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
    return list(shown) + pool[: OPTION_COUNT - len(shown)]


# ----------------------------------------------------------------------------- families
# Each build returns (candidates, answer, slots); ``_compose`` adds the slot ``answer`` (the
# correct option's text). Trace templates: lists of sentences; the last one names the answer
# and the answer block follows it (the answer word, see the labelling rule).


def shape_descriptions(scene: Scene) -> list[str]:
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
    slots = {"count_phrase": count_phrase_text(count)}
    return list(COUNT_WORDS), COUNT_WORDS[count - 1], slots


def _build_appeared_first(scene, spec, rng):
    _require_distinct_looks(scene, spec.family)
    if len(scene.shapes) < 2:
        raise _fail(spec.family, "needs at least two shapes")
    ranks = _appearance_ranks(scene, spec.family)
    descriptions = shape_descriptions(scene)
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
    descriptions = shape_descriptions(scene)
    answer = descriptions[ranks.index(target_rank + 1)]
    shown = [d for i, d in enumerate(descriptions) if i != spec.target]
    slots = {
        "target": target.description,
        "first_colour": _first_colour(scene, ranks),
        "order_clauses": order_clauses_text(descriptions, ranks),
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
        "mover_clauses": mover_clauses_text(
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
