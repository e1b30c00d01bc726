"""VideoMMMU (Hu et al., 2025): learning from lecture videos, in three tracks (Perception,
Comprehension, Adaptation) of 300 questions each.

Why it is here: VideoMMMU is one of the Video-KTR paper's reasoning benchmarks. Its authors
evaluate through lmms-eval (the VideoMMMU README points there), so we reproduce lmms-eval's task:
the prompts of the VideoMMMU repository's task config (videommmu/VideoMMMU,
``lmms_eval/tasks/videommmu/_default_template_yaml``) and the scoring of lmms-eval's
``lmms_eval/tasks/videommmu/utils.py`` (EvolvingLMMs-Lab/lmms-eval: ``videommmu_process_results``,
``videommmu_aggregate_results``, ``evaluate_videommmu``, ``parse_open_response``, ``eval_open``)
with its multiple-choice parser ``parse_videommmu_multi_choice_response``
(``lmms_eval/tasks/_task_utils/mmmu_mcq_utils.py``).

Expected layout::

    DATA/perception_video.json       the repository's data files (videommmu/VideoMMMU data/):
    DATA/comprehension_video.json    {"<Track>": {"0": row, "1": row, ...}}; any *.json / *.jsonl
    DATA/adaptation_video.json       list of rows with a "track" key works too
    DATA/<Discipline>/<id>.mp4       the lmms-eval cache layout of the HF videos (Art, Business,
                                     Science, Medicine, Humanities, Engineering), or
    DATA/videos/<id>.mp4             a flat folder (used when the first does not exist)

A row: ``id`` (e.g. "validation_Biology_7"; the subject sits between the first and the last
underscore), ``question``, ``options`` (list; empty for open questions), ``answer`` (a letter,
or the value of an open question), ``question_type`` ("multiple-choice" or anything else for
open questions, e.g. "open"). A row without ``question_type`` (or with null) is an open
question, whatever its options: the released data's 600 Perception and Comprehension rows have
none, and the task reads ``doc.get("question_type", "None")``, so their letter answers are scored
by the open-question rule ("B" right, "(B)" wrong). ``benchmarks/crosscheck_videommmu.py`` scores
generated outputs for every released row with the lmms-eval copy the VideoMMMU repository
ships and with this module: 100% agreement on 60,067 outputs (2026-12-05). Each video carries one question per track, so item ids are
``"<track>/<id>"`` and the flattened row gets a ``track`` key. Breakdowns: ``track`` and
``discipline``.

Prompts (repository task config)::

    Perception, Comprehension:  <question>\\n<options><post prompt>
    Adaptation, multiple choice: <pre prompt><mcq prompt><question>\\n<options>
    Adaptation, open:            <pre prompt><open prompt><question>

with ``<options>`` the lines "A. text" (kept as given when every option already starts with its
"A." label), pre prompt "You should watch and learn the video content. Then apply what you
learned to ", mcq prompt "answer the following multi-choice question. The image for this question
is at the end of the video.\\n", open prompt the same with "open-ended", post prompt
"\\nPlease ignore the Quiz question in last frame of the video." (verbatim: they tell the model
where the question's image is). Caveat: the Adaptation videos carry the question's image in
their last frames; uniform sampling takes segment middles and sees it only if it lasts longer
than half a segment.

Scoring, ``parser="official"``:

* empty output -> "API Error", which the aggregation drops (not counted);
* multiple choice, ``parse_videommmu_multi_choice_response`` with ``all_choices`` the letters of
  the options and ``index2ans`` letter -> option text::

      strip each of , . ! ? ; : ' from both ends of the response (in that order, once each);
      r = " " + response + " "
      candidates: every L with "L." in r (period form), then every L with "L:" in r (colon
      form, appended to the same list); if still none, every L with "(L)" in r; if none, every
      L with "L " in r; if none and r has more than 5 words, every L whose option text occurs
      in r (case-insensitive; "content" form)
      none -> "No Answer Found." (wrong); one -> it; several -> the one whose marker occurs
      last: rfind of "L." if any period form was found, else "L:", else "(L)", else " L ", or
      of the option text for the content form; ties go to the first candidate
      score = 1.0 if prediction == answer else 0.0

* open questions, ``parse_open_response`` + ``eval_open``: the response (stripped, final "."
  removed, lower-cased) is split into sentences at ". " before a capital (never true after
  lower-casing) and at newlines; in each, the text after the last occurrence of whichever
  indicator ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ",
  "are ", "in total ", "total ", "identify ", "recognize ", "calculated as ", "counted as ",
  "measured as ", "observed as ", "concluded as ", "found to be ", "equals ",
  "determined to be ", "number of ", "value is ", "adds up to ", "have ", "has ", and "=" in the
  last sentence) leaves the shortest tail is a key response (the whole response if none); the
  numbers in key responses are added; each is normalised (a number -> float rounded to 2
  places; else lower-cased, a one-character string padded with a space on either side). The
  answer is normalised the same way; correct when a normalised answer string is a substring of
  a predicted string, or a predicted number equals a normalised answer number.

Quirks kept: the period and colon forms look for "L." / "L:" anywhere, so "DNA." proposes A and
"Note: C" proposes C, and because both forms fill one list a letter can appear twice; the
"L " form matches any capital followed by a space ("A cell..."); for open questions a number
anywhere in a key sentence counts.

``parser="strict"``: multiple choice by :func:`videoktr.eval.common.strict_choice`; open
questions by the official rule applied to :func:`videoktr.eval.common.answer_text` (the last
answer block), every question counted.
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
    answer_text,
    check_parser,
    check_unique_ids,
    contained_video,
    data_root,
    letter_options,
    read_json_file,
    require,
    strict_choice,
)

NAME = "videommmu"
PARSERS = ("official", "strict")
TRACKS = ("Perception", "Comprehension", "Adaptation")
DISCIPLINES = ("Art", "Business", "Science", "Medicine", "Humanities", "Engineering")
BREAKDOWN_FIELDS = ("track", "discipline")
BREAKDOWN_ORDER = {"track": TRACKS, "discipline": DISCIPLINES}
SCORER_NOTE = (
    "official: lmms-eval tasks/videommmu/utils.py as shipped with videommmu/VideoMMMU, "
    "rows without question_type scored as open questions; empty outputs are dropped from the denominator"
)

PRE_PROMPT = "You should watch and learn the video content. Then apply what you learned to "
PERCEPTION_AND_COMPREHENSION_PROMPT = (
    "\nPlease ignore the Quiz question in last frame of the video."
)
MCQ_PROMPT = (
    "answer the following multi-choice question. The image for this question is at the end of "
    "the video.\n"
)
OPEN_ENDED_PROMPT = (
    "answer the following open-ended question. The image for this question is at the end of the "
    "video.\n"
)

# lmms-eval's get_cache_dir: subject -> the folder its videos are unzipped to.
SUBJECT_DISCIPLINE = {
    **dict.fromkeys(["Art", "Art_Theory", "Design", "Music"], "Art"),
    **dict.fromkeys(["Biology", "Chemistry", "Geography", "Math", "Physics"], "Science"),
    **dict.fromkeys(["History", "Literature", "Sociology", "Psychology"], "Humanities"),
    **dict.fromkeys(
        [
            "Agriculture",
            "Architecture_and_Engineering",
            "Computer_Science",
            "Electronics",
            "Energy_and_Power",
            "Materials",
            "Mechanical_Engineering",
        ],
        "Engineering",
    ),
    **dict.fromkeys(
        [
            "Basic_Medical_Science",
            "Clinical_Medicine",
            "Diagnostics_and_Laboratory_Medicine",
            "Pharmacy",
            "Public_Health",
        ],
        "Medicine",
    ),
    **dict.fromkeys(["Accounting", "Economics", "Finance", "Manage", "Marketing"], "Business"),
}

_OPEN_INDICATORS = (
    "could be ",
    "so ",
    "is ",
    "thus ",
    "therefore ",
    "final ",
    "answer ",
    "result ",
    "are ",
    "in total ",
    "total ",
    "identify ",
    "recognize ",
    "calculated as ",
    "counted as ",
    "measured as ",
    "observed as ",
    "concluded as ",
    "found to be ",
    "equals ",
    "determined to be ",
    "number of ",
    "value is ",
    "adds up to ",
    "have ",
    "has ",
)


def subject_of(item_id: str) -> str:
    """The subject in an id such as ``validation_Art_Theory_3`` (between the first and the last
    underscore), as ``videommmu_doc_to_visual`` reads it."""
    return "_".join(item_id.split("_")[1:-1])


def is_multiple_choice(row: Mapping[str, Any]) -> bool:
    return row.get("question_type") == "multiple-choice"


def format_options(options: list[str]) -> str:
    """``parse_options``: options kept as given when each starts with its "A." label, else
    "A. text" lines."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    if all(option.startswith(f"{letter}.") for option, letter in zip(options, letters)):
        return "\n".join(options)
    return "\n".join(f"{letter}. {option}" for letter, option in zip(letters, options))


def build_prompt(row: Mapping[str, Any]) -> str:
    question = str(row["question"])
    if row.get("track") == "Adaptation":
        if is_multiple_choice(row):
            return PRE_PROMPT + MCQ_PROMPT + question + "\n" + format_options(list(row["options"]))
        return PRE_PROMPT + OPEN_ENDED_PROMPT + question
    return (
        question + "\n" + format_options(list(row["options"])) + PERCEPTION_AND_COMPREHENSION_PROMPT
    )


# ------------------------------------------------------------------------------ multiple choice


def parse_multi_choice(response: str, options: list[str]) -> str:
    """``parse_videommmu_multi_choice_response`` (rules in the module docstring)."""
    if response == "":
        return "API Error"
    all_choices = [chr(ord("A") + i) for i in range(len(options))]
    index2ans = dict(zip(all_choices, options))
    for char in (",", ".", "!", "?", ";", ":", "'"):
        response = response.strip(char)
    response = " " + response + " "

    index_ans = True
    with_period = with_colon = with_bracket = False
    candidates: list[str] = []
    for choice in all_choices:
        if f"{choice}." in response:
            candidates.append(choice)
            with_period = True
    for choice in all_choices:
        if f"{choice}:" in response:
            candidates.append(choice)
            with_colon = True
    if not candidates:
        for choice in all_choices:
            if f"({choice})" in response:
                candidates.append(choice)
                with_bracket = True
    if not candidates:
        for choice in all_choices:
            if f"{choice} " in response:
                candidates.append(choice)
    if not candidates and len(response.split()) > 5:
        for choice, text in index2ans.items():
            if str(text).lower() in response.lower():
                candidates.append(choice)
                index_ans = False

    if not candidates:
        return "No Answer Found."
    if len(candidates) == 1:
        return candidates[0]
    if index_ans:
        if with_period:
            marker = "{}."
        elif with_colon:
            marker = "{}:"
        elif with_bracket:
            marker = "({})"
        else:
            marker = " {} "
        positions = [response.rfind(marker.format(c)) for c in candidates]
    else:
        positions = [response.lower().rfind(str(index2ans[c]).lower()) for c in candidates]
    return candidates[positions.index(max(positions))]  # np.argmax: the first maximum


# ------------------------------------------------------------------------------ open questions


def _extract_numbers(text: str) -> list[str]:
    with_commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", text)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", text)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", text)
    return with_commas + scientific + simple


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _normalize(text: str) -> list[str | float]:
    text = text.strip()
    if _is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


def parse_open(response: str) -> list[str | float] | str:
    """``parse_open_response``: the list of normalised predictions, or "API Error"."""
    if response == "":
        return "API Error"
    response = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", response)
    key_responses = []
    for index, sentence in enumerate(sentences):
        indicators = list(_OPEN_INDICATORS) + (["="] if index == len(sentences) - 1 else [])
        shortest = None
        for indicator in indicators:
            if indicator in sentence:
                tail = sentence.split(indicator)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # an empty tail counts as none
                    shortest = tail
        if shortest and shortest.strip() not in (":", ",", ".", "!", "?", ";", "'"):
            key_responses.append(shortest)
    if not key_responses:
        key_responses = [response]
    predictions: list[str] = list(key_responses)
    for key in key_responses:
        predictions.extend(_extract_numbers(key))
    normalised: list[str | float] = []
    for prediction in predictions:
        normalised.extend(_normalize(prediction))
    return list(dict.fromkeys(normalised))  # the official set(), in a stable order


def eval_open(answer: str, predictions: list[str | float]) -> bool:
    """``eval_open``: a normalised answer string inside a predicted string, or an equal number."""
    answers = _normalize(answer)
    for prediction in predictions:
        if isinstance(prediction, str):
            if any(isinstance(a, str) and a in prediction for a in answers):
                return True
        elif prediction in answers:
            return True
    return False


def judge(row: Mapping[str, Any], output: str, parser: str = "official") -> Judgement:
    """Score one output against one flat row (``question_type``, ``options``, ``answer``)."""
    check_parser(NAME, parser, PARSERS)
    output = output if isinstance(output, str) else ""
    answer = str(row["answer"])
    options = [str(o) for o in row.get("options") or []]
    if is_multiple_choice(row):
        if parser == "strict":
            letter = strict_choice(output, letter_options(options)) or ""
            return Judgement(float(letter != "" and letter == answer), letter)
        prediction = parse_multi_choice(output, options)
        if prediction == "API Error":
            return Judgement(0.0, prediction, counted=False)
        return Judgement(float(prediction == answer), prediction)
    text = answer_text(output) if parser == "strict" else output
    parsed = parse_open(text)
    if parsed == "API Error":
        return Judgement(0.0, parsed, counted=parser == "strict")
    return Judgement(float(eval_open(answer, parsed)), "; ".join(map(str, parsed)))


# ------------------------------------------------------------------------------ loading


def _track_rows(file: Path) -> list[tuple[str, str, object]]:
    """``(track, location, row)`` for every row of one annotation file."""
    if file.suffix.lower() == ".jsonl":
        from ..common import read_json_or_jsonl

        entries = read_json_or_jsonl(file)
        return [(_row_track(row, file, location), location, row) for location, row in entries]
    data = read_json_file(file)
    out = []
    if isinstance(data, dict):
        for track, rows in data.items():
            if track not in TRACKS:
                raise AnnotationError(f"{file}: unknown track {track!r}; expected {TRACKS}")
            values = (
                rows.items()
                if isinstance(rows, dict)
                else enumerate(rows)
                if isinstance(rows, list)
                else None
            )
            if values is None:
                raise AnnotationError(f"{file} track {track!r}: expected an object or list of rows")
            out.extend((track, f"{file} {track} [{key}]", row) for key, row in values)
        return out
    if isinstance(data, list):
        return [
            (_row_track(row, file, f"{file} index {i}"), f"{file} index {i}", row)
            for i, row in enumerate(data)
        ]
    raise AnnotationError(f"{file}: expected an object of tracks or a list of rows")


def _row_track(row: object, file: Path, location: str) -> str:
    track = row.get("track") if isinstance(row, Mapping) else None
    if track is None:
        for name in TRACKS:
            if file.name.lower().startswith(name.lower()):
                return name
        raise AnnotationError(
            f"{location}: field 'track' is missing (and the file name names none)"
        )
    if track not in TRACKS:
        raise AnnotationError(f"{location}: field 'track' is {track!r}; expected one of {TRACKS}")
    return str(track)


def _video_path(root: Path, item_id: str, discipline: str | None, location: str) -> Path:
    nested = contained_video(root, Path(discipline) / f"{item_id}.mp4", location, "id") if discipline else None
    if nested is not None and nested.is_file():
        return nested
    flat = contained_video(root, Path("videos") / f"{item_id}.mp4", location, "id")
    if flat.is_file() or nested is None:
        return flat
    return nested


def load_items(data_dir: str | os.PathLike) -> list[EvalItem]:
    """Every question of the annotation files (layout in the module docstring)."""
    files = annotation_files(data_dir, (".json", ".jsonl"))
    root = data_root(data_dir)
    items = []
    for file in files:
        for track, location, row in _track_rows(file):
            item_id = require(row, "id", str, location)
            require(row, "question", str, location)
            answer = require(row, "answer", str, location).strip()
            assert isinstance(row, dict)
            options = row.get("options") or []
            if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
                raise AnnotationError(f"{location}: field 'options' must be a list of strings")
            if is_multiple_choice(row):
                if not options:
                    raise AnnotationError(f"{location}: a multiple-choice row needs 'options'")
                if answer not in letter_options(options):
                    raise AnnotationError(
                        f"{location}: field 'answer' is {answer!r}; expected a letter of the "
                        f"{len(options)} options"
                    )
            discipline = SUBJECT_DISCIPLINE.get(subject_of(item_id))
            flat = {**row, "track": track}
            items.append(
                EvalItem(
                    id=f"{track}/{item_id}",
                    video=_video_path(root, item_id, discipline, location),
                    prompt=build_prompt(flat),
                    answer=answer,
                    breakdown={"track": track, "discipline": discipline or "unknown"},
                    row=flat,
                )
            )
    check_unique_ids(items, NAME)
    return items
