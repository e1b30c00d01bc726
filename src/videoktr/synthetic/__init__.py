"""The built-in synthetic video world: clips whose content is known, questions about them, and
reasoning traces in which every word is labelled ``visual``, ``temporal`` or ``neutral``.

It exists so that Video-KTR's claims can be checked against ground truth: do the visual and
temporal signals pick the words that depend on what the video shows and on the order of its
frames? The package is the world alone: it imports no model and trains nothing (the demo's
training stages live in ``videoktr.experiments``).

* ``world``: scenes (coloured shapes on a 96x96 black canvas, appearing, disappearing, moving),
  their rendering and exact time reversal;
* ``scenes``: the scene samplers, one per kind of claim a family makes;
* ``labels``: the world's vocabulary and the labelling rule;
* ``families``: the question families (visual, temporal, both);
* ``tasks``: ``TASKS``, which families make a world (``standard``, and the filler tasks);
* ``questions``: questions with their labelled traces, and the Video-R1 row of one;
* ``corpus``: ``world_corpus``, every text the world can produce (to train a tokenizer on);
* ``writer``: near-lossless MP4 encoding and ``generate_dataset``, which writes a Video-R1
  dataset (``videos/``, ``train.jsonl``, ``test.jsonl``, ``world.json``).
"""

from .corpus import world_corpus
from .families import FAMILIES, Family, QuestionSpec
from .labels import (
    ANSWER_LABELS,
    LABELS,
    LETTERS,
    QUESTION_KINDS,
    TEMPORAL_WORDS,
    VISUAL_WORDS,
    label_word,
)
from .questions import (
    OPTION_ORDER,
    Question,
    make_question,
    question_row,
    rebuild_question,
    sample_question,
)
from .scenes import (
    sample_mover_scene,
    sample_num_frames,
    sample_opposite_movers_scene,
    sample_queue_scene,
    sample_still_scene,
)
from .tasks import TASKS, check_task
from .world import (
    COLOURS,
    DIRECTIONS,
    FRAME_COUNTS,
    FRAME_SIZE,
    KINDS,
    Scene,
    Shape,
    render,
    reverse_frames,
    shape_mask,
    shapes_overlap,
)
from .writer import (
    SynthSummary,
    generate_dataset,
    generate_rows,
    split_rows,
    video_codec,
    write_video,
)

__all__ = [
    "ANSWER_LABELS",
    "COLOURS",
    "DIRECTIONS",
    "FAMILIES",
    "FRAME_COUNTS",
    "FRAME_SIZE",
    "KINDS",
    "LABELS",
    "LETTERS",
    "OPTION_ORDER",
    "QUESTION_KINDS",
    "TASKS",
    "TEMPORAL_WORDS",
    "VISUAL_WORDS",
    "Family",
    "Question",
    "QuestionSpec",
    "Scene",
    "Shape",
    "SynthSummary",
    "check_task",
    "generate_dataset",
    "generate_rows",
    "label_word",
    "make_question",
    "question_row",
    "rebuild_question",
    "render",
    "reverse_frames",
    "sample_mover_scene",
    "sample_num_frames",
    "sample_opposite_movers_scene",
    "sample_question",
    "sample_still_scene",
    "sample_queue_scene",
    "shape_mask",
    "shapes_overlap",
    "split_rows",
    "video_codec",
    "world_corpus",
    "write_video",
]
