"""Video-Holmes (Cheng et al., 2025): complex video reasoning on suspense short films.

Why it is here: Video-Holmes is the headline benchmark of the Video-KTR paper (42.7% for the 7B
model), so we score it exactly as its authors' ``evaluate.py`` does (TencentARC/Video-Holmes,
``evaluate.py``, function ``evaluate``), quirks included, and offer a strict parser beside it.

Expected layout (the official download unzips to ``Benchmark/``)::

    DATA/test_Video-Holmes.json      the official question file: a JSON list of rows
    DATA/videos/<video ID>.mp4       one film per video ID

If ``test_Video-Holmes.json`` is absent, every ``*.json`` file directly in ``DATA`` is read as a
list of rows (e.g. the per-film question files of the repository's ``Pipeline/example_questions``).
``DATA`` may also be a single question file; videos are then looked up in ``<its folder>/videos``.

A row (official format)::

    "video ID"       str    the film, e.g. "RSmjqss0XKQ"
    "Question ID"    int    (or str) numbering within the file
    "Question Type"  str    one of SR, IMC, TCI, TA, MHR, PAR, CTI
    "Question"       str
    "Options"        dict   {"A": "...", ..., "F": "..."}
    "Answer"         str    a key of Options
    "Explanation"    str    optional

Item ids are ``"<video ID>_<Question ID>"`` (question ids repeat across films in the per-film
files). The breakdown is ``question_type`` over the seven task types, in the paper's order.

Prompt: the one ``evaluate.py`` sends to every model: the question and the options joined as
``"A: text, B: text, ..."`` inside a fixed instruction asking for ``<think>`` reasoning and an
``<answer>`` block (reproduced verbatim: its format requests are what the scorer parses).

Scoring, ``parser="official"`` (``evaluate.py``, after the model call)::

    blocks = re.findall(r"<answer>\\s*(.*?)\\s*</answer>", output, DOTALL)
    choice = strip(blocks[-1])  if blocks  else output          (the last block wins)
    prediction = the first L of A, B, C, D, E, F (in that order) such that
                 "L " in choice  or  "L:" in choice  or  "[L" in choice,
                 else the first L of A..F such that "L" in choice,
                 else "WRONG"
    score = 1.0 if prediction == Answer else 0.0

Quirks this keeps (they are the official numbers): letters are found anywhere as substrings, so
with no answer block a whole reasoning text is searched and any capital ``A``-``F`` counts
("Based on the video..." reads as B; "A man enters" reads as A); letters are tried in
alphabetical order, not by position, so "B and A are wrong" reads as A ("A " matches first),
while "B or A" reads as B (a final "A" has no space, colon or bracket beside it, so the
first tier finds only "B "); the non-greedy block regex pairs an
opening tag with the nearest closing tag, so nested tags are read from the first opening tag.

``parser="strict"``: :func:`videoktr.eval.common.strict_choice` over the options A-F; anything
that does not name exactly one option in a label form scores 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..common import (
    AnnotationError,
    EvalItem,
    Judgement,
    annotation_files,
    check_parser,
    check_unique_ids,
    contained_video,
    data_root,
    read_json_or_jsonl,
    require,
    strict_choice,
)

NAME = "video_holmes"
PARSERS = ("official", "strict")
QUESTION_TYPES = ("SR", "IMC", "TCI", "TA", "MHR", "PAR", "CTI")
BREAKDOWN_FIELDS = ("question_type",)
BREAKDOWN_ORDER = {"question_type": QUESTION_TYPES}
OFFICIAL_FILE = "test_Video-Holmes.json"
SCORER_NOTE = "official: TencentARC/Video-Holmes evaluate.py letter rules"

_LETTERS = ("A", "B", "C", "D", "E", "F")
_ANSWER_PATTERN = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)

PROMPT_TEMPLATE = (
    "Based on the given video, reason and answer the single-choice question. Provide your "
    "reasoning between the <think> and </think> tags, and then give your final answer between "
    "the <answer> and </answer> tags. The question is: {question}. The options are: {options}. "
    "Your answer:"
)


def format_options(options: Mapping[str, str]) -> str:
    """``"A: text, B: text, ..."`` in the order of the row's ``Options`` object."""
    return ", ".join(f"{key}: {value}" for key, value in options.items())


def build_prompt(row: Mapping[str, Any]) -> str:
    """The official prompt for one row (see the module docstring)."""
    return PROMPT_TEMPLATE.format(question=row["Question"], options=format_options(row["Options"]))


def official_prediction(output: str) -> str:
    """The letter ``evaluate.py`` reads from ``output``, or ``"WRONG"`` (rules above)."""
    if not isinstance(output, str):
        return "WRONG"
    blocks = _ANSWER_PATTERN.findall(output)
    choice = blocks[-1].strip() if blocks else output
    for letter in _LETTERS:
        if f"{letter} " in choice or f"{letter}:" in choice or f"[{letter}" in choice:
            return letter
    for letter in _LETTERS:
        if letter in choice:
            return letter
    return "WRONG"


def judge(row: Mapping[str, Any], output: str, parser: str = "official") -> Judgement:
    """Score one output against one official row (``Answer`` and ``Options`` are read)."""
    check_parser(NAME, parser, PARSERS)
    answer = str(row["Answer"]).strip()
    if parser == "official":
        prediction = official_prediction(output)
    else:
        prediction = strict_choice(output, row["Options"]) or ""
    return Judgement(1.0 if prediction == answer else 0.0, prediction)


def item_from_row(row: object, root: str | os.PathLike, location: str = "row") -> EvalItem:
    """Validate one official row and make its item; ``AnnotationError`` naming ``location``."""
    video_id = require(row, "video ID", str, location)
    question_id = require(row, "Question ID", (int, str), location)
    question_type = require(row, "Question Type", str, location)
    if question_type not in QUESTION_TYPES:
        raise AnnotationError(
            f"{location}: field 'Question Type' is {question_type!r}; expected one of "
            + ", ".join(QUESTION_TYPES)
        )
    require(row, "Question", str, location)
    options = require(row, "Options", dict, location)
    if not options or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in options.items()
    ):
        raise AnnotationError(
            f"{location}: field 'Options' must be a non-empty object of letter -> text"
        )
    if not set(options) <= set(_LETTERS):
        raise AnnotationError(
            f"{location}: field 'Options' has keys {sorted(options)}; expected letters A-F"
        )
    answer = require(row, "Answer", str, location).strip()
    if answer not in options:
        raise AnnotationError(
            f"{location}: field 'Answer' is {answer!r}, not one of the options {sorted(options)}"
        )
    assert isinstance(row, dict)
    return EvalItem(
        id=f"{video_id}_{question_id}",
        video=contained_video(root, Path("videos") / f"{video_id}.mp4", location, "video ID"),
        prompt=build_prompt(row),
        answer=answer,
        breakdown={"question_type": question_type},
        row=row,
    )


def load_items(data_dir: str | os.PathLike) -> list[EvalItem]:
    """Every question of the benchmark (layout in the module docstring), in file order."""
    path = Path(data_dir)
    if path.is_dir() and (path / OFFICIAL_FILE).is_file():
        files = [path / OFFICIAL_FILE]
    else:
        files = annotation_files(path, (".json",))
    root = data_root(path)
    items = [
        item_from_row(row, root, location)
        for file in files
        for location, row in read_json_or_jsonl(file)
    ]
    check_unique_ids(items, NAME)
    return items
