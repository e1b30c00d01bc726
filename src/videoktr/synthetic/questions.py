"""Questions about synthetic scenes, with reasoning traces whose every word carries a known label.

Why. Video-KTR scores each generated token by how much its probability depends on the video
(visual signal: the video removed), on the order of the frames (temporal signal: the frames
shuffled), or on neither. To check those scores against ground truth, each row of the synthetic
world carries a reference trace ``<think>...</think><answer>X</answer>`` in which every word is
labelled ``visual``, ``temporal`` or ``neutral`` (the rule: ``videoktr.synthetic.labels``; the
families: ``videoktr.synthetic.families``).

One trace per family, shapes always named in the fixed colour order. Every trace opens with
"I see <the shapes, in colour order>." and ends with the sentence that names the answer, so the
answer letter follows from the word right before it: a small policy then writes traces that do
not mix wordings, and the listing's colour words do not lean on the order of the frames
(``docs/demo.md`` has what went wrong before).

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

from dataclasses import dataclass
from typing import Any

import numpy as np

from .families import (
    FAMILIES,
    OPTION_COUNT,
    Family,
    QuestionSpec,
    Unsuitable,
    listing_text,
    shape_descriptions,
)
from .labels import ANSWER_LABELS, COUNT_WORDS, DISTRACTOR_KIND, LETTERS, QUESTION_KINDS, label_word
from .tasks import TASKS, check_task
from .world import COLOURS, DIRECTIONS, KINDS, Scene, reverse_frames

__all__ = ["OPTION_ORDER", "Question", "make_question", "question_row", "rebuild_question", "sample_question"]


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


# Options are listed in one fixed order, word by word: "A. red B. green C. blue D. yellow" for
# every colour question, descriptions by colour then kind. Why: with shuffled options the
# letter is a pointer into the prompt that a small policy does not learn in minutes, and
# accuracy then measures its favourite letter (docs/demo.md); with a fixed order the letter
# follows from the answer word. It still varies with the answer (distractors differ).
OPTION_ORDER = (*COLOURS, *KINDS, DISTRACTOR_KIND, *COUNT_WORDS, *DIRECTIONS)


def _option_order_key(option: str) -> list[int]:
    return [OPTION_ORDER.index(word) for word in option.split(" ")]


def _compose(family: Family, scene: Scene, spec: QuestionSpec) -> tuple[tuple[str, ...], int, str, tuple[str, ...]]:
    """``(options, answer_index, problem, trace sentences)`` of ``spec`` asked about ``scene``."""
    rng = np.random.default_rng(spec.option_seed)
    candidates, answer, slots = family.build(scene, spec, rng)
    assert len(set(candidates)) == OPTION_COUNT and answer in candidates
    options = tuple(sorted(candidates, key=_option_order_key))
    answer_index = options.index(answer)
    # Every trace opens with the listing and closes on the answer: two slots for every family.
    slots = {**slots, "answer": answer, "listing": listing_text(shape_descriptions(scene))}
    problem = family.questions[spec.question_variant].format(**slots)
    sentences = tuple(sentence.format(**slots) for sentence in family.traces[spec.trace_variant])
    return options, answer_index, problem, sentences


def _backwards_words(family: Family, scene: Scene, spec: QuestionSpec) -> list[str] | None:
    """The words of the same question's trace about the clip played backwards (same frames,
    opposite order), or ``None`` when the reversed scene does not suit the family."""
    try:
        options, answer_index, _, sentences = _compose(family, reverse_frames(scene), spec)
    except Unsuitable:
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
    # Words of a filler sentence are neutral whatever they say: neither the video nor the
    # reward decides them (rule 2 cannot move them either: the clip played backwards keeps them).
    neutral = set()
    start = 0
    for index, sentence in enumerate(sentences):
        count = len(sentence.split(" "))
        if index in family.neutral_sentences:
            neutral.update(range(start, start + count))
        start += count
    trace_words = tuple(
        (word, "neutral" if i in neutral
         else "temporal" if backwards is not None and backwards[i] != word else label_word(word))
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
    rng: np.random.Generator, kind: str | None = None, family: str | None = None, task: str = "standard"
) -> tuple[Scene, Question]:
    """Draw a scene and a question about it: from ``family`` if given, else from a family of
    ``task`` (``TASKS``) and ``kind`` (uniformly), else from a uniformly drawn kind. Wordings are
    drawn uniformly."""
    task = check_task(task)
    if family is None:
        if kind is None:
            kind = str(rng.choice(QUESTION_KINDS))
        if kind not in QUESTION_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(QUESTION_KINDS)}")
        names = [name for name in TASKS[task] if FAMILIES[name].kind == kind]
        if not names:
            raise ValueError(f"task {task!r} has no {kind} family")
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
