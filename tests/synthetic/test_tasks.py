"""The filler tasks (``synthetic.TASKS``): what their filler words are, how they are labelled,
and that the standard world does not change when they exist."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from videoktr.synthetic import (
    COLOURS,
    FAMILIES,
    TASKS,
    Scene,
    generate_dataset,
    generate_rows,
    make_question,
    reverse_frames,
    sample_question,
    world_corpus,
)
from videoktr.synthetic.tasks import FILLER_LENGTH, FILLER_OWN_WORDS

FILLER_TASKS = ("filler", "filler_templated", "filler_own")
VOCABULARY = {"filler": set(COLOURS), "filler_templated": set(COLOURS), "filler_own": set(FILLER_OWN_WORDS)}


def filler_words(question) -> list[str]:
    """The filler sentence's words, punctuation and tag removed."""
    first = question.sentences[0]
    assert first.startswith("Maybe ") and first.endswith(".")
    return first[len("Maybe "):-1].split(" ")


def examples(task: str, count: int = 40):
    return [sample_question(np.random.default_rng([5, i]), kind="visual", task=task) for i in range(count)]


def test_tasks_partition_the_families():
    assert set(TASKS) == {"standard", *FILLER_TASKS}
    assert sorted(name for names in TASKS.values() for name in names) == sorted(FAMILIES)
    assert len(TASKS["standard"]) == 8
    for task in FILLER_TASKS:
        assert TASKS[task] == (f"colour_of_shape_{task}",)


@pytest.mark.parametrize("task", FILLER_TASKS)
def test_filler_words_come_from_the_task_vocabulary_and_are_neutral(task):
    seen = []
    for scene, question in examples(task):
        words = filler_words(question)
        assert len(words) == FILLER_LENGTH and set(words) <= VOCABULARY[task]
        seen.append(tuple(words))
        labels = [label for _, label in question.trace_words]
        assert labels[: FILLER_LENGTH + 1] == ["neutral"] * (FILLER_LENGTH + 1)  # "<think>Maybe" and the four
        # The key word is the answer colour, and the letter follows from it.
        assert question.trace.endswith(f" is {question.answer}.</think><answer>{question.letter}</answer>")
        assert question.options == tuple(COLOURS) and question.trace_words[-1][1] == "visual"
        # Playing the still clip backwards changes nothing, filler included.
        assert make_question(reverse_frames(scene), question.spec).trace == question.trace
    if task == "filler_templated":
        assert set(seen) == {tuple(COLOURS)}
    else:  # drawn: many different fillers, every word of the vocabulary used
        assert len(set(seen)) > 30 and {w for words in seen for w in words} == VOCABULARY[task]


def test_the_same_spec_gives_the_same_filler_and_the_same_scene_for_every_filler_task():
    for index in range(10):
        questions = [sample_question(np.random.default_rng([3, index]), kind="visual", task=task)
                     for task in FILLER_TASKS]
        # The three tasks draw the same clips and questions: they differ only in the filler.
        assert len({json.dumps(scene.to_dict()) for scene, _ in questions}) == 1
        assert len({q.answer for _, q in questions}) == 1 and len({q.problem for _, q in questions}) == 1
        scene, question = questions[0]
        again = make_question(Scene.from_dict(scene.to_dict()), replace(question.spec))
        assert again.trace == question.trace


def test_recolouring_the_target_changes_the_answer_and_not_the_filler():
    for scene, question in examples("filler", 20):
        target = question.spec.target
        other = next(c for c in COLOURS if all(s.colour != c for s in scene.shapes))
        recoloured = make_question(scene.with_shape(target, colour=other), question.spec)
        assert filler_words(recoloured) == filler_words(question)
        assert recoloured.answer == other != question.answer


def test_filler_rows_and_world_file(tmp_path):
    summary = generate_dataset(tmp_path, 12, 4, task="filler_own", progress=False)
    world = json.loads(summary.world_file.read_text())
    assert world["task"] == "filler_own" and world["families"] == {"colour_of_shape_filler_own": "visual"}
    rows = [json.loads(line) for f in (summary.train_file, summary.test_file) for line in f.read_text().splitlines()]
    assert len(rows) == 12 and {row["family"] for row in rows} == {"colour_of_shape_filler_own"}
    assert summary.counts["train"]["temporal"] == summary.counts["test"]["both"] == 0


def test_the_standard_world_holds_no_filler():
    rows = [row for row, _ in generate_rows(30, 0)]
    assert {row["family"] for row in rows} <= set(TASKS["standard"])
    assert [row["kind"] for row in rows[:3]] == ["visual", "temporal", "both"]
    assert not any("Maybe" in text for text in world_corpus())


def test_every_filler_task_shares_one_corpus_that_holds_its_texts():
    corpora = {task: world_corpus(task) for task in FILLER_TASKS}
    assert corpora["filler"] == corpora["filler_templated"] == corpora["filler_own"]
    corpus = set(corpora["filler"])
    for task in FILLER_TASKS:
        for _, question in examples(task, 10):
            assert set(question.sentences) <= corpus and question.problem in corpus


def test_unknown_tasks_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'noise'.*filler_own"):
        generate_rows(2, 0, task="noise")
    with pytest.raises(ValueError, match="unknown task"):
        world_corpus("noise")
    with pytest.raises(ValueError, match="task 'filler' has no temporal family"):
        sample_question(np.random.default_rng(0), kind="temporal", task="filler")
    with pytest.raises(ValueError, match="unknown task"):
        generate_dataset(tmp_path / "w", 2, 0, task="noise")
    assert not (tmp_path / "w").exists()
