"""Questions and labelled traces of the standard world (the demo's eight families): the format,
and the labels against counterfactual scenes. The filler tasks: ``test_tasks.py``.

The labelling rule says a visual word is fixed by what the frames show and a temporal word by
their order. The counterfactual tests check exactly that: recolouring a shape changes only
colour words (visual ones, or temporal ones when the colour names an order-dependent fact, such
as which shape appeared first) and the answer word; playing a temporal clip backwards changes
only temporal words (and the answer word) and always changes the answer.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from videoktr.synthetic import (
    ANSWER_LABELS,
    COLOURS,
    FAMILIES,
    KINDS,
    OPTION_ORDER,
    TASKS,
    TEMPORAL_WORDS,
    QuestionSpec,
    Scene,
    Shape,
    label_word,
    make_question,
    render,
    reverse_frames,
    sample_question,
    world_corpus,
)

STANDARD = {name: FAMILIES[name] for name in TASKS["standard"]}
PER_FAMILY = 30
FLIPS = {"left": "right", "right": "left", "up": "down", "down": "up"}


def examples(family: str, count: int = PER_FAMILY):
    for seed in range(count):
        yield sample_question(np.random.default_rng([11, seed]), family=family)


def all_examples():
    for family in STANDARD:
        yield from examples(family)


def changed_positions(before, after):
    assert len(before.trace_words) == len(after.trace_words), (before.trace, after.trace)
    return [
        i
        for i, (old, new) in enumerate(zip(before.trace_words, after.trace_words, strict=True))
        if old[0] != new[0]
    ]


def core(word: str) -> str:
    return re.sub(r"<[^>]*>", "", word).strip(".,:;").lower()


@pytest.mark.parametrize("family", STANDARD)
def test_rows_are_well_formed(family):
    for scene, question in examples(family):
        assert len(question.options) == 4 and len(set(question.options)) == 4
        assert question.labelled_options[0].startswith("A. ")
        assert question.solution == f"<answer>{question.letter}</answer>"
        assert question.trace == question.process + question.solution
        assert question.process.startswith("<think>") and question.process.endswith("</think>")
        assert " ".join(word for word, _ in question.trace_words) == question.trace
        assert question.trace.split() == [word for word, _ in question.trace_words]
        assert 8 <= len(question.trace_words) <= 45
        assert all(label in ("visual", "temporal", "neutral") for _, label in question.trace_words)
        *body, (_, last_label) = question.trace_words
        backwards = make_question(reverse_frames(scene), question.spec).trace_words
        for (word, label), (backwards_word, _) in zip(body, backwards, strict=False):
            # the lexicon's label, unless the clip played backwards says another word here
            assert label == ("temporal" if backwards_word != word else label_word(word)), word
        assert last_label == ANSWER_LABELS[question.kind]
        # The last sentence names the answer and the answer block follows it; no letter before.
        assert question.trace.endswith(f".</think><answer>{question.letter}</answer>")
        assert "answer is" not in question.process
        assert question.kind == FAMILIES[family].kind


def test_every_family_and_wording_is_reachable():
    seen = {(q.family, q.spec.question_variant, q.spec.trace_variant) for _, q in all_examples()}
    assert {family for family, _, _ in seen} == set(STANDARD)
    for family in STANDARD:
        assert {q for f, q, _ in seen if f == family} == {0, 1, 2}
        assert {t for f, _, t in seen if f == family} == {0}  # one trace per family


def test_options_are_listed_in_the_fixed_order():
    letters_by_family = {}
    for _, question in all_examples():
        keys = [[OPTION_ORDER.index(word) for word in option.split(" ")] for option in question.options]
        assert keys == sorted(keys), question.options
        letters_by_family.setdefault(question.family, set()).add(question.letter)
    # Single-word vocabularies are offered whole, so the letter is a function of the answer.
    for _, question in examples("colour_of_shape"):
        assert question.options == tuple(COLOURS)
        assert question.letter == "ABCD"[list(COLOURS).index(question.answer)]
    # The letter still varies with the answer in every family.
    assert all(len(letters) >= 2 for letters in letters_by_family.values()), letters_by_family


def test_labels_follow_the_lexicon():
    assert label_word("red,") == "visual" and label_word("triangle.") == "visual"
    assert label_word("three") == "visual"
    # Order words the order does not decide (the fixed "The first shape to appear") are neutral;
    # rule 2 makes a word temporal, not the lexicon.
    assert label_word("first.") == "neutral" and label_word("appeared") == "neutral"
    assert label_word("<think>I") == "neutral" and label_word("answer") == "neutral"


def test_shapes_are_listed_in_the_colour_order():
    for scene, question in all_examples():
        listing = question.sentences[0]
        assert listing.startswith("I see ")
        named = [core(word) for word in listing.split(" ") if core(word) in COLOURS]
        assert named == sorted(named, key=list(COLOURS).index) and len(named) == len(scene.shapes)


def test_order_words_are_temporal_exactly_when_the_order_decides_them():
    for scene, question in all_examples():
        backwards = make_question(reverse_frames(scene), question.spec)
        for (word, label), (other, _) in zip(question.trace_words[:-1], backwards.trace_words, strict=False):
            if core(word) in TEMPORAL_WORDS:
                assert label == ("temporal" if other != word else "neutral"), (word, question.trace)


def test_the_same_spec_gives_the_same_question():
    for seed in range(10):
        scene, question = sample_question(np.random.default_rng(seed))
        scene_again, question_again = sample_question(np.random.default_rng(seed))
        assert scene == scene_again and question == question_again
        assert make_question(scene, question.spec) == question


def test_visual_traces_hold_no_temporal_words_and_ignore_the_order():
    for family in (name for name, f in STANDARD.items() if f.kind == "visual"):
        for scene, question in examples(family):
            assert all(label != "temporal" for _, label in question.trace_words)
            # Any single frame answers it: every shape is in every frame ...
            for frame in range(scene.num_frames):
                assert len(scene.visible_shapes(frame)) == len(scene.shapes)
            # ... and the order of the frames changes nothing.
            assert make_question(reverse_frames(scene), question.spec) == question


def _recolour_each_shape(scene: Scene):
    unused = [colour for colour in COLOURS if colour not in {s.colour for s in scene.shapes}]
    for index in range(len(scene.shapes)):
        yield index, scene.with_shape(index, colour=unused[0])


@pytest.mark.parametrize("family", STANDARD)
def test_recolouring_a_shape_changes_only_visual_words(family):
    for scene, question in examples(family):
        for index, recoloured in _recolour_each_shape(scene):
            after = make_question(recoloured, question.spec)
            changed = changed_positions(question, after)
            old_colour, new_colour = scene.shapes[index].colour, recoloured.shapes[index].colour
            colours = [core(word) for word, _ in question.trace_words if core(word) in COLOURS]
            colours_after = [core(word) for word, _ in after.trace_words if core(word) in COLOURS]
            # the shape keeps every mention, under its new colour (the listing may reorder)
            assert sorted(colours_after) == sorted(new_colour if c == old_colour else c for c in colours)
            for i in changed:
                word, label = question.trace_words[i]
                if i == len(question.trace_words) - 1:
                    assert label == ANSWER_LABELS[question.kind]
                    continue
                if core(word) in TEMPORAL_WORDS:
                    continue  # clauses listed in colour order may trade places: checked below
                # a colour or shape word (the colour order may move shapes in the listing):
                # visual, or temporal when it names an order-dependent fact ("The first shape
                # to appear is red"); either way the same label after
                assert label in ("visual", "temporal") and after.trace_words[i][1] == label, (word, label)
                assert label_word(word) == label_word(after.trace_words[i][0]) == "visual"
            # Each shape keeps its place in the order and its motion (clauses listed in colour
            # order may trade places), and no other order word changes.
            def bindings(q, rename=lambda c: c):
                pairs = re.findall(r"(\w+) (\w+) (appeared|moves|starts further) (\w+)", q.process)
                return sorted((rename(colour), kind, verb, word) for colour, kind, verb, word in pairs)

            assert bindings(after) == bindings(question, lambda c: new_colour if c == old_colour else c)
            order = sorted(core(w) for w, _ in question.trace_words[:-1] if core(w) in TEMPORAL_WORDS)
            assert order == sorted(core(w) for w, _ in after.trace_words[:-1] if core(w) in TEMPORAL_WORDS)


def test_changing_a_kind_changes_the_shape_word():
    for scene, question in examples("shape_of_colour"):
        target = question.spec.target
        unused = [
            k for k in ("circle", "square", "triangle") if k not in {s.kind for s in scene.shapes}
        ]
        if not unused:
            continue
        after = make_question(scene.with_shape(target, kind=unused[0]), question.spec)
        assert after.answer == unused[0] != question.answer
        for i in changed_positions(question, after)[:-1]:
            assert question.trace_words[i][1] == "visual"


def test_removing_a_shape_changes_the_count_word():
    for scene, question in examples("count"):
        if len(scene.shapes) < 2:
            continue
        after = make_question(replace(scene, shapes=scene.shapes[:-1]), question.spec)
        counts = {"one", "two", "three"}
        before_counts = [core(w) for w, _ in question.trace_words if core(w) in counts]
        after_counts = [core(w) for w, _ in after.trace_words if core(w) in counts]
        assert before_counts != after_counts
        assert after.answer == ["one", "two", "three"][len(scene.shapes) - 2]


TEMPORAL_FAMILIES = [name for name, f in STANDARD.items() if f.kind == "temporal"]
QUEUE_FAMILIES = ("appeared_first", "appeared_after", "colour_of_first")
ORDER_FAMILIES = [name for name, f in STANDARD.items() if f.kind in ("temporal", "both")]


@pytest.mark.parametrize("family", TEMPORAL_FAMILIES)
def test_playing_a_temporal_clip_backwards_flips_only_temporal_words(family):
    flips = {
        **FLIPS,
        "first": ("second", "third"),
        "second": ("first", "second"),
        "third": ("first",),
    }
    for scene, question in examples(family):
        after = make_question(reverse_frames(scene), question.spec)
        changed = changed_positions(question, after)
        assert changed and changed[-1] == len(question.trace_words) - 1  # the answer moves
        assert after.answer != question.answer and after.options == question.options
        flipped = 0
        for i in changed[:-1]:
            (old, label), (new, new_label) = question.trace_words[i], after.trace_words[i]
            assert label == new_label == "temporal", (old, new)
            if core(old) in (*COLOURS, *KINDS):  # the first shape's colour, a queue answer's shape
                assert core(new) in (*COLOURS, *KINDS) and family in QUEUE_FAMILIES, (old, new)
                continue
            assert core(new) in flips[core(old)], (old, new)
            flipped += 1
        assert flipped or family == "appeared_first"  # its trace names the order by colour only
        # Visual words unchanged, in place.
        assert [w for w, lab in question.trace_words if lab == "visual"] == [
            w for w, lab in after.trace_words if lab == "visual"
        ]


def test_direction_words_flip_left_right_and_up_down():
    for scene, question in examples("direction"):
        after = make_question(reverse_frames(scene), question.spec)
        assert after.answer == FLIPS[question.answer]
        old = [core(w) for w, _ in question.trace_words if core(w) in FLIPS]
        new = [core(w) for w, _ in after.trace_words if core(w) in FLIPS]
        assert new == [FLIPS[w] for w in old]


def test_appearance_order_words_flip_first_and_last():
    for scene, question in examples("appeared_after"):
        after = make_question(reverse_frames(scene), question.spec)
        ordinals = ("first", "second", "third")
        old = [core(w) for w, _ in question.trace_words if core(w) in ordinals]
        new = [core(w) for w, _ in after.trace_words if core(w) in ordinals]
        swap = {"first": "third", "second": "second", "third": "first"}
        # the fixed "first" of "The first shape to appear is" stays
        assert new == ["first"] + [swap[w] for w in old[1:]]


@pytest.mark.parametrize("family", [f for f in ORDER_FAMILIES if FAMILIES[f].kind == "both"])
def test_both_questions_change_answer_and_only_labelled_words_backwards(family):
    for scene, question in examples(family):
        after = make_question(reverse_frames(scene), question.spec)
        assert after.answer != question.answer
        for i in changed_positions(question, after)[:-1]:
            assert question.trace_words[i][1] in ("temporal", "visual")
        assert question.trace_words[-1][1] == "temporal"


@pytest.mark.parametrize("family", ORDER_FAMILIES)
def test_no_single_frame_answers_an_order_question(family):
    """The reversed clip has the very same frames (so every single frame, and even the set of
    frames) but another answer; and the frame the brief singles out shows all it must."""
    for scene, question in examples(family, 15):
        backwards = reverse_frames(scene)
        frames = render(scene)
        assert np.array_equal(render(backwards), frames[::-1])
        assert make_question(backwards, question.spec).answer != question.answer
        everyone = list(range(len(scene.shapes)))
        if family in ("appeared_first", "appeared_after", "colour_of_first"):
            # some frame shows every shape, so what is present does not tell the order
            assert any(scene.visible_shapes(f) == everyone for f in range(scene.num_frames))
        else:  # direction, colour_of_mover: the moving shapes are in every frame
            movers = [i for i, s in enumerate(scene.shapes) if s.motion != "static"]
            assert all(set(movers) <= set(scene.visible_shapes(f)) for f in range(scene.num_frames))


def test_unsuitable_scenes_and_specs_are_rejected():
    same_time = Scene(
        8,
        (
            Shape("red", "circle", 16, x=0, y=0, appear=2),
            Shape("blue", "square", 16, x=30, y=30, appear=2),
        ),
    )
    with pytest.raises(ValueError, match="appear at distinct frames"):
        make_question(same_time, QuestionSpec("appeared_first"))
    with pytest.raises(ValueError, match="unknown family"):
        make_question(same_time, QuestionSpec("colour_of_everything"))
    with pytest.raises(ValueError, match="trace_variant must be in 0..0"):
        make_question(same_time, QuestionSpec("count", trace_variant=1))
    with pytest.raises(ValueError, match="does not move"):
        make_question(same_time, QuestionSpec("direction", target=0))
    with pytest.raises(ValueError, match="visible in every frame"):
        make_question(same_time, QuestionSpec("colour_of_shape", target=0))
    with pytest.raises(ValueError, match="unknown kind"):
        sample_question(np.random.default_rng(0), kind="smell")


def test_the_corpus_holds_every_text_a_row_shows():
    corpus = set(world_corpus())
    assert any("Study the video closely" in text for text in corpus)
    for _, question in all_examples():
        assert question.problem in corpus
        assert set(question.labelled_options) <= corpus
        assert set(question.sentences) <= corpus, [s for s in question.sentences if s not in corpus]
