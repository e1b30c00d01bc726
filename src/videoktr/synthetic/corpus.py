"""``world_corpus``: every text the world can produce, to train the demo's tokenizer on."""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterator

from .families import (
    FAMILIES,
    count_phrase_text,
    listing_text,
    mover_clauses_text,
    order_clauses_text,
)
from .labels import COUNT_WORDS, DISTRACTOR_KIND, LETTERS
from .tasks import FILLER_LENGTH, FILLER_VOCABULARIES, TASKS, check_task
from .world import COLOURS, DIRECTIONS, KINDS, opposite_direction

__all__ = ["world_corpus"]


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
        order_clauses_text(looks, ranks)
        for n in (2, 3)
        for looks in _looks_tuples(n)
        for ranks in itertools.permutations(range(n))
    ]
    mover_clauses = [
        mover_clauses_text(looks, (direction, opposite_direction(direction)))
        for looks in _looks_tuples(2)
        for direction in DIRECTIONS
    ]
    single = {
        "colour": list(COLOURS),
        "first_colour": list(COLOURS),
        "kind": list(KINDS),
        "target": [f"{c} {k}" for c in COLOURS for k in KINDS],
        "question_direction": list(DIRECTIONS),
        "count_phrase": [count_phrase_text(n) for n in (1, 2, 3)],
        "answer": [f"{c} {k}" for c in COLOURS for k in KINDS],
        "listing": [listing_text(looks) for looks in shapes_1_to_3],
        "order_clauses": order_clauses,
        "mover_clauses": mover_clauses,
        "filler": [" ".join(words) for vocabulary in FILLER_VOCABULARIES.values() if vocabulary is not None
                   for words in itertools.product(vocabulary, repeat=FILLER_LENGTH)],
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


def world_corpus(task: str = "standard") -> list[str]:
    """Every text the world of ``task`` (``synthetic.TASKS``) can produce, deduplicated and
    sorted, to train a tokenizer on.

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
    for family in (FAMILIES[name] for name in TASKS[check_task(task)]):
        for template in family.questions:
            texts.update(_fillings(template, groups))
        for trace in family.traces:
            for position, sentence in enumerate(trace):
                filled = list(_fillings(sentence, groups))
                texts.update(filled)
                if position:  # in a trace it follows a space: teach the tokenizer " The" too
                    texts.update(" " + text for text in filled)
    return sorted(texts)
