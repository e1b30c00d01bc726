"""The built-in synthetic video world: clips whose content is known, questions about them, and
reasoning traces in which every word is labelled ``visual``, ``temporal`` or ``neutral``.

It exists so that Video-KTR's claims can be checked against ground truth: do the visual and
temporal signals pick the words that depend on what the video shows and on the order of its
frames?

* ``world``: scenes (coloured shapes on a 96x96 black canvas, appearing, disappearing, moving),
  their rendering, time reversal, and the scene samplers.
* ``questions``: the question families (visual, temporal, both), the labelled traces and the
  labelling rule, ``world_corpus`` for training a tokenizer on the world's text.
* ``writer``: near-lossless MP4 encoding and ``generate_dataset``, which writes a Video-R1
  dataset (``videos/``, ``train.jsonl``, ``test.jsonl``, ``world.json``).
"""

from .questions import (
    ANSWER_LABELS,
    FAMILIES,
    LABELS,
    OPTION_ORDER,
    QUESTION_KINDS,
    TEMPORAL_WORDS,
    VISUAL_WORDS,
    Family,
    Question,
    QuestionSpec,
    label_word,
    make_question,
    question_row,
    rebuild_question,
    sample_question,
    world_corpus,
)
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
    "OPTION_ORDER",
    "QUESTION_KINDS",
    "TEMPORAL_WORDS",
    "VISUAL_WORDS",
    "Family",
    "Question",
    "QuestionSpec",
    "Scene",
    "Shape",
    "SynthSummary",
    "generate_dataset",
    "generate_rows",
    "label_word",
    "make_question",
    "question_row",
    "rebuild_question",
    "render",
    "reverse_frames",
    "sample_question",
    "shapes_overlap",
    "split_rows",
    "video_codec",
    "world_corpus",
    "write_video",
]
