"""The synthetic world's tasks: which question families make one world.

``standard`` is the eight families of ``videoktr.synthetic.families``. The other tasks each
hold one visual family, ``colour_of_shape`` about a clip of a single shape (its colour is the
one thing to read, and the demo's encoder reads it), whose trace opens with a *filler* sentence
("Maybe blue red red green."): four words that neither the video nor the reward decides,
labelled ``neutral``. They exist to test when token selection should matter
(``docs/selection.md``):

* ``filler``: the words drawn uniformly, with replacement, from the answer's own vocabulary (the
  colours), so a policy trained on the traces is as unsure of them as it can be;
* ``filler_templated``: always the same four colour words: the same vocabulary, no uncertainty;
* ``filler_own``: drawn uniformly from four words used nowhere else (``FILLER_OWN_WORDS``):
  uncertain, but sharing nothing with the answer.

Importing this module registers the filler families in ``FAMILIES`` (each ``Family.task`` names
its task) and builds ``TASKS``: task name -> its family names.
"""

from __future__ import annotations

from collections.abc import Sequence

from .families import FAMILIES, Family, _build_colour_of_shape
from .labels import QUESTION_KINDS
from .scenes import sample_still_scene
from .world import COLOURS

__all__ = ["FILLER_LENGTH", "FILLER_OWN_WORDS", "FILLER_TEMPLATE", "FILLER_VOCABULARIES", "TASKS", "check_task"]

FILLER_LENGTH = 4  # words in a filler sentence
FILLER_OWN_WORDS = ("la", "le", "lo", "lu")  # the ``filler_own`` task's vocabulary, used nowhere else
FILLER_TEMPLATE = "Maybe {filler}."
# Each filler task's vocabulary; None: the colours in their fixed order, the same every time.
FILLER_VOCABULARIES: dict[str, tuple[str, ...] | None] = {
    "filler": tuple(COLOURS), "filler_templated": None, "filler_own": FILLER_OWN_WORDS,
}


def _filler_builder(vocabulary: Sequence[str] | None):
    """``colour_of_shape``'s build plus the slot ``filler``: ``FILLER_LENGTH`` words drawn
    uniformly from ``vocabulary`` with the question's own generator (so the clip played
    backwards keeps them), or, for ``None``, the colours in their fixed order."""

    def build(scene, spec, rng):
        candidates, answer, slots = _build_colour_of_shape(scene, spec, rng)
        words = (list(COLOURS) if vocabulary is None
                 else [vocabulary[int(i)] for i in rng.integers(len(vocabulary), size=FILLER_LENGTH)])
        return candidates, answer, {**slots, "filler": " ".join(words)}

    return build


def _sample_single(rng):
    return sample_still_scene(rng, num_shapes=1), {"target": 0}


_COLOUR_OF_SHAPE = FAMILIES["colour_of_shape"]
for _task, _vocabulary in FILLER_VOCABULARIES.items():
    FAMILIES[f"colour_of_shape_{_task}"] = Family(
        name=f"colour_of_shape_{_task}",
        kind="visual",
        questions=_COLOUR_OF_SHAPE.questions,
        traces=((FILLER_TEMPLATE, "The {kind} is {colour}."),),
        sample=_sample_single,
        build=_filler_builder(_vocabulary),
        task=_task,
        neutral_sentences=(0,),
    )
TASKS: dict[str, tuple[str, ...]] = {}
for _family in FAMILIES.values():
    TASKS.setdefault(_family.task, ())
    TASKS[_family.task] += (_family.name,)
assert {FAMILIES[name].kind for name in TASKS["standard"]} == set(QUESTION_KINDS)


def check_task(task: object) -> str:
    """``task`` if it names a world of ``TASKS``, else a ``ValueError`` that lists them."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return str(task)
