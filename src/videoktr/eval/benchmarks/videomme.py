"""Video-MME (Fu et al., 2024): 2,700 four-option questions on 900 videos of three durations.

Why it is here: Video-MME is one of the Video-KTR paper's general video-understanding
benchmarks; its authors report accuracy per duration (short < 2 min, medium 4-15 min, long
30-60 min), computed by ``evaluation/eval_your_results.py`` of BradyFU/Video-MME, whose letter
extraction and counting we reproduce. Subtitles are not used (the subtitle-free setting).

Expected layout::

    DATA/*.json | DATA/*.jsonl        the annotations (every such file directly in DATA)
    DATA/videos/<videoID>.mp4         the videos (HF lmms-lab/Video-MME names them by YouTube id)

Two annotation shapes are accepted, per file:

* the official JSON (README / ``evaluation/output_test_template.json``): a list of videos, each
  ``{"video_id", "duration_category" | "duration", "video_category", "video_sub_category" |
  "video_subcategory", "url", "questions": [{"question_id", "task_type", "question",
  "choices", "answer"}]}``;
* flat question rows, as in the Hugging Face release (``lmms-lab/Video-MME``, exported from
  parquet to JSON/JSONL): ``{"video_id", "duration", "domain", "sub_category", "url", "videoID",
  "question_id", "task_type", "question", "options", "answer"}``.

Either way a question becomes one flat row with the keys ``video_id, videoID, url, duration,
domain, sub_category, question_id, task_type, question, options, answer`` (the form
``judge``/``score_output`` take; only ``answer`` is needed to score). The video is the first
existing of ``videos/<videoID>.mp4``, ``videos/<YouTube id from url>.mp4``,
``videos/<video_id>.mp4`` (the first candidate when none exists). Item ids are ``question_id``.
Breakdowns: ``duration`` (short, medium, long) and ``task_type`` (12 task categories).

Prompt (README, "Evaluation Pipeline", subtitle-free)::

    Select the best answer to the following multiple-choice question based on the video.
    Respond with only the letter (A, B, C, or D) of the correct option.
    <question>
    A. ...            (the options as given, one per line)
    The best answer is:

Scoring, ``parser="official"`` (``eval_your_results.py``: ``extract_characters_regex`` and the
counting in ``eval_your_results``)::

    s = strip(response)
    delete from s every occurrence of each of: "The best answer is", "The correct answer is",
        "The answer is", "The answer", "The best option isThe correct option is",
        "Best answer:Best option:"
    prediction = "" if s has more than 10 whitespace-separated words and no A-D capital,
                 else the first character of s in [ABCD] ("" if none)
    prediction == ""  ->  not counted: the question leaves the denominator (only answered
                          questions count: accuracy = correct / answered)
    otherwise         ->  score = 1.0 if prediction == answer else 0.0

Quirks kept: two missing commas in the official prefix list glue "The best option is" with
"The correct option is" and "Best answer:" with "Best option:", so those phrases are only removed
in those exact concatenations; the first capital A-D anywhere wins, so "Based on the video, C"
reads as B and a ``<think>`` reasoning text is read from its first capital A-D; a response with
no A-D at all is dropped from the denominator instead of being wrong.

``parser="strict"``: :func:`videoktr.eval.common.strict_choice` over the question's options,
every question counted (no answer is wrong, not absent).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..common import (
    AnnotationError,
    EvalItem,
    Judgement,
    annotation_files,
    check_parser,
    check_unique_ids,
    contained_video,
    data_root,
    letter_options,
    read_json_file,
    read_json_or_jsonl,
    require,
    strict_choice,
)

NAME = "videomme"
PARSERS = ("official", "strict")
DURATIONS = ("short", "medium", "long")
TASK_TYPES = (
    "Temporal Perception",
    "Spatial Perception",
    "Attribute Perception",
    "Action Recognition",
    "Object Recognition",
    "OCR Problems",
    "Counting Problem",
    "Temporal Reasoning",
    "Spatial Reasoning",
    "Action Reasoning",
    "Object Reasoning",
    "Information Synopsis",
)
BREAKDOWN_FIELDS = ("duration", "task_type")
BREAKDOWN_ORDER = {"duration": DURATIONS, "task_type": TASK_TYPES}
SCORER_NOTE = (
    "official: BradyFU/Video-MME evaluation/eval_your_results.py (unanswered questions are "
    "left out of the denominator)"
)

PROMPT_HEADER = (
    "Select the best answer to the following multiple-choice question based on the video. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)
PROMPT_FOOTER = "The best answer is:"

# The official list, with its two missing commas applied (Python joins adjacent literals).
_OFFICIAL_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
)
_ABCD = re.compile(r"[ABCD]")


def extract_letter(response: str) -> str:
    """The official letter extraction: ``""`` when no letter is found (rules above)."""
    if not isinstance(response, str):
        return ""
    text = response.strip()
    for prefix in _OFFICIAL_PREFIXES:
        text = text.replace(prefix, "")
    if len(text.split()) > 10 and not _ABCD.search(text):
        return ""
    match = _ABCD.search(text)
    return match.group(0) if match else ""


def build_prompt(row: Mapping[str, Any]) -> str:
    """The official subtitle-free prompt for a flat row."""
    return "\n".join(
        [PROMPT_HEADER, str(row["question"]), *map(str, row["options"]), PROMPT_FOOTER]
    )


def judge(row: Mapping[str, Any], output: str, parser: str = "official") -> Judgement:
    """Score one output against one flat question row (``answer``; ``options`` for strict)."""
    check_parser(NAME, parser, PARSERS)
    answer = str(row["answer"]).strip()
    if parser == "official":
        prediction = extract_letter(output)
        if prediction == "":
            return Judgement(0.0, "", counted=False)
        return Judgement(1.0 if prediction == answer else 0.0, prediction)
    prediction = strict_choice(output, letter_options(row.get("options") or [])) or ""
    return Judgement(1.0 if prediction == answer else 0.0, prediction)


def _youtube_id(url: object) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return None
    parsed = urlparse(url.strip())
    if parsed.hostname and parsed.hostname.endswith("youtu.be"):
        return parsed.path.strip("/") or None
    values = parse_qs(parsed.query).get("v")
    return values[0] if values else None


def _video_path(root: Path, row: Mapping[str, Any], location: str) -> Path:
    fields = {"videoID": row.get("videoID"), "url": _youtube_id(row.get("url")), "video_id": row.get("video_id")}
    candidates = [
        contained_video(root, Path("videos") / f"{name}.mp4", location, field)
        for field, name in fields.items() if isinstance(name, str) and name
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def _flat_row(question: object, video: Mapping[str, Any] | None, location: str) -> dict[str, Any]:
    """Validate a question (flat, or nested in ``video``) and return its flat row."""
    if not isinstance(question, Mapping):
        raise AnnotationError(f"{location}: question is not a JSON object")
    source: Mapping[str, Any] = {**(video or {}), **question}  # video fields, then question's
    video_id = require(source, "video_id", (str, int), location)
    duration_key = "duration" if "duration" in source else "duration_category"
    duration = require(source, duration_key, str, location)
    if duration not in DURATIONS:
        raise AnnotationError(
            f"{location}: field {duration_key!r} is {duration!r}; expected short, medium or long"
        )
    options_key = "options" if "options" in question else "choices"
    options = require(question, options_key, list, location)
    if not options or not all(isinstance(o, str) for o in options):
        raise AnnotationError(
            f"{location}: field {options_key!r} must be a non-empty list of strings"
        )
    answer = require(question, "answer", str, location).strip()
    if answer not in letter_options(options):
        raise AnnotationError(
            f"{location}: field 'answer' is {answer!r}; expected a letter of the "
            f"{len(options)} options"
        )
    return {
        "video_id": str(video_id),
        "videoID": source.get("videoID"),
        "url": source.get("url"),
        "duration": duration,
        "domain": source.get("domain", source.get("video_category")),
        "sub_category": source.get(
            "sub_category", source.get("video_sub_category", source.get("video_subcategory"))
        ),
        "question_id": str(require(question, "question_id", (str, int), location)),
        "task_type": require(question, "task_type", str, location),
        "question": require(question, "question", str, location),
        "options": list(options),
        "answer": answer,
    }


def _rows_of_file(file: Path) -> list[tuple[str, dict[str, Any]]]:
    if file.suffix.lower() == ".jsonl":
        entries = read_json_or_jsonl(file)
    else:
        data = read_json_file(file)
        if not isinstance(data, list):
            raise AnnotationError(f"{file}: expected a JSON list, got {type(data).__name__}")
        entries = [(f"{file} index {i}", entry) for i, entry in enumerate(data)]
    rows = []
    for location, entry in entries:
        if isinstance(entry, Mapping) and "questions" in entry:
            questions = entry["questions"]
            if not isinstance(questions, list):
                raise AnnotationError(f"{location}: field 'questions' must be a list")
            for number, question in enumerate(questions):
                where = f"{location} question {number}"
                rows.append((where, _flat_row(question, entry, where)))
        else:
            rows.append((location, _flat_row(entry, None, location)))
    return rows


def load_items(data_dir: str | os.PathLike) -> list[EvalItem]:
    """Every question of the annotation files (layout in the module docstring)."""
    files = annotation_files(data_dir, (".json", ".jsonl"))
    root = data_root(data_dir)
    items = []
    for file in files:
        for location, row in _rows_of_file(file):
            items.append(
                EvalItem(
                    id=row["question_id"],
                    video=_video_path(root, row, location),
                    prompt=build_prompt(row),
                    answer=row["answer"],
                    breakdown={"duration": row["duration"], "task_type": row["task_type"]},
                    row=row,
                )
            )
    check_unique_ids(items, NAME)
    return items
