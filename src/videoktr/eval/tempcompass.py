"""TempCompass (Liu et al., 2024): does the model perceive time (action, speed, direction, order,
attribute change) rather than single frames?

Why it is here: TempCompass is one of the Video-KTR paper's benchmarks, and the temporal
dimensions are what temporal-sensitive key tokens are meant to improve. Its official evaluation
(llyx97/TempCompass, ``eval_multi-choice.py``, ``eval_yes_no.py``, ``eval_caption_matching.py``)
first applies hand-written matching rules and sends the outputs the rules cannot match to a
ChatGPT judge. We implement only the rule-based part: an unmatched output scores 0, exactly what
the official scripts do with ``--disable_llm``. The fourth task type, captioning, is judged by an
LLM only and is not loaded.

Expected layout (the repository / Hugging Face release)::

    DATA/questions/multi-choice.json       (any of the three; at least one)
    DATA/questions/yes_no.json
    DATA/questions/caption_matching.json
    DATA/videos/<video id>.mp4             e.g. 1034419625.mp4, 1034419625_reverse.mp4

(the question files may also sit directly in ``DATA``). Each file maps a video id to its
dimensions, each a list of ``{"question", "answer"}``. A question becomes one flat row
``{"video_id", "dimension", "task_type", "index", "question", "answer"}`` (what
``judge``/``score_output`` take; ``task_type`` is inferred from the answer when missing). Item
ids are ``"<task_type>/<video id>/<dimension>/<index>"``. Breakdowns: ``dimension`` (action,
direction, speed, order, attribute_change; as ``utils/eval_utils.py``'s ``print_result``) and
``task_type``; the overall accuracy is over all loaded questions.

Prompt: the question followed by the task's answer prompt of the official inference scripts
(e.g. ``run_qwen2_vl.py``, ``answer_prompt``): ``"\\nPlease directly give the best option:"``
(multi-choice, caption matching) or ``"\\nPlease answer yes or no:"`` (yes/no).

Scoring, ``parser="official"``: ``p`` is the output with every ``"</s>"`` removed, not stripped.

* multi-choice (``eval_multi-choice.py``, ``main``): 1 if ``p == answer`` (the full "B. text");
  else if ``p`` is one of A, B, C, D: ``p == answer[0]``; else if ``p`` starts with "A." ... "D.":
  the part before the first "." equals ``answer[0]``; else if it starts with "A)" ... "D)": the
  part before the first ")" does; else no match: 0.
* yes/no (``eval_yes_no.py``, ``extract_pred``): lower-case ``p``; starts with "yes" -> yes,
  starts with "no" -> no, else no match (0); score ``prediction == answer``.
* caption matching (``eval_caption_matching.py``, ``eval_rule``): the option lines are the
  question's lines after the first; each is "<label>: <sentence>" (split at the first ": ").
  The prediction is, later rules overriding earlier ones: an option line equal to ``p``; a
  sentence equal to ``p`` or to the part of ``p`` after its first ") "; a label equal to ``p`` or
  to ``p`` with every "." removed. No prediction: 0. Else 1 if it equals the answer, the
  answer's part before the first ":", or its part after the first ": ".

Quirks kept: nothing is stripped, so "A\\n" or " A" do not match; "(A)" and reasoning outputs
never match (the official judge would read them; here they score 0); "nope", "none" and "not
sure" read as "no", "yesterday" as "yes"; a sentence containing ": " is cut there.

``parser="strict"`` reads :func:`videoktr.eval.common.answer_text` (last answer block, else the
whole output, stripped): multi-choice by ``strict_choice`` over the question's options;
yes/no when the first word (letters only, any case) is exactly "yes" or "no"; caption matching
when the text is one option's label ("Caption A", "option 1", with an optional final "." or
":"), its bare index ("A", "(A)", "1"), its full line, or its sentence (up to case, spacing
and a final period).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import (
    AnnotationError,
    EvalItem,
    Judgement,
    answer_text,
    check_parser,
    check_unique_ids,
    read_json_file,
    strict_choice,
)

NAME = "tempcompass"
PARSERS = ("official", "strict")
TASK_TYPES = ("multi-choice", "yes_no", "caption_matching")
DIMENSIONS = ("action", "direction", "speed", "order", "attribute_change")
BREAKDOWN_FIELDS = ("dimension", "task_type")
BREAKDOWN_ORDER = {"dimension": DIMENSIONS}
SCORER_NOTE = (
    "official: llyx97/TempCompass rule-based matching only (as --disable_llm); the official "
    "ChatGPT fallback for unmatched outputs is not run (they score 0)"
)
ANSWER_PROMPTS = {
    "multi-choice": "\nPlease directly give the best option:",
    "yes_no": "\nPlease answer yes or no:",
    "caption_matching": "\nPlease directly give the best option:",
}


def build_prompt(row: Mapping[str, Any]) -> str:
    return str(row["question"]) + ANSWER_PROMPTS[task_type_of(row)]


def task_type_of(row: Mapping[str, Any]) -> str:
    """``row["task_type"]``, or inferred: a yes/no answer, a "<label>: <caption>" answer, else
    multi-choice."""
    task_type = row.get("task_type")
    if task_type in TASK_TYPES:
        return str(task_type)
    answer = str(row.get("answer", ""))
    if answer in ("yes", "no"):
        return "yes_no"
    if re.match(r"^(Caption|Sentence|Option) \w+: ", answer):
        return "caption_matching"
    return "multi-choice"


# ------------------------------------------------------------------------------ official rules


def _official_multi_choice(p: str, answer: str) -> tuple[float, str]:
    if p == answer:
        return 1.0, answer[:1]
    if p in ("A", "B", "C", "D"):
        return float(p == answer[0]), p
    if any(p.startswith(prefix) for prefix in ("A.", "B.", "C.", "D.")):
        letter = p.split(".")[0]
        return float(letter == answer[0]), letter
    if any(p.startswith(prefix) for prefix in ("A)", "B)", "C)", "D)")):
        letter = p.split(")")[0]
        return float(letter == answer[0]), letter
    return 0.0, ""


def _official_yes_no(p: str, answer: str) -> tuple[float, str]:
    lowered = p.lower()
    if lowered.startswith("yes"):
        prediction = "yes"
    elif lowered.startswith("no"):
        prediction = "no"
    else:
        return 0.0, ""
    return float(prediction == answer), prediction


def _caption_options(question: str) -> list[tuple[str, str, str]]:
    """``(line, label, sentence)`` for each option line of a caption-matching question."""
    options = []
    for line in question.split("\n")[1:]:
        label, _, rest = line.partition(": ")
        sentence = rest.split(": ")[0]
        options.append((line, label, sentence))
    return options


def _official_caption_matching(p: str, question: str, answer: str) -> tuple[float, str]:
    options = _caption_options(question)
    prediction = None
    for line, _, _ in options:
        if line == p:
            prediction = line
    for _, _, sentence in options:
        if sentence == p or (") " in p and sentence == p.split(") ")[1]):
            prediction = sentence
    for _, label, _ in options:
        if label == p or label == p.replace(".", ""):
            prediction = label
    if prediction is None:
        return 0.0, ""
    answer_label = answer.split(":")[0]
    answer_sentence = answer.split(": ")[1] if ": " in answer else None
    correct = prediction in (answer, answer_label) or prediction == answer_sentence
    return float(correct), prediction


# ------------------------------------------------------------------------------ strict rules


def _mc_options(question: str) -> dict[str, str]:
    options = {}
    for line in question.split("\n")[1:]:
        match = re.match(r"^([A-Z])\.\s*(.*)$", line)
        if match:
            options[match.group(1)] = match.group(2)
    return options


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold().removesuffix(".").rstrip()


def _strict_caption_label(output: str, question: str) -> str | None:
    text = answer_text(output)
    options = _caption_options(question)
    for line, label, sentence in options:
        index = label.split(" ")[-1]
        label_forms = {_norm(label), _norm(label).rstrip(":")}
        bare = text.strip().strip("()").rstrip(".:")
        if (
            _norm(text).rstrip(":") in label_forms
            or bare == index
            or _norm(text) == _norm(line)
            or _norm(text) == _norm(sentence)
        ):
            return label
    return None


def _strict(row: Mapping[str, Any], output: str, task_type: str) -> tuple[float, str]:
    answer = str(row["answer"])
    question = str(row["question"])
    if task_type == "multi-choice":
        letter = strict_choice(output, _mc_options(question)) or ""
        return float(letter != "" and letter == answer[:1]), letter
    if task_type == "yes_no":
        words = re.findall(r"[A-Za-z]+", answer_text(output))
        prediction = words[0].lower() if words and words[0].lower() in ("yes", "no") else ""
        return float(prediction != "" and prediction == answer), prediction
    label = _strict_caption_label(output, question) or ""
    return float(label != "" and label == answer.split(":")[0]), label


def judge(row: Mapping[str, Any], output: str, parser: str = "official") -> Judgement:
    """Score one output against one flat question row (``question``, ``answer``, ``task_type``)."""
    check_parser(NAME, parser, PARSERS)
    task_type = task_type_of(row)
    if parser == "strict":
        score, prediction = _strict(row, output, task_type)
        return Judgement(score, prediction)
    p = output.replace("</s>", "") if isinstance(output, str) else ""
    answer = str(row["answer"])
    if task_type == "multi-choice":
        score, prediction = _official_multi_choice(p, answer)
    elif task_type == "yes_no":
        score, prediction = _official_yes_no(p, answer)
    else:
        score, prediction = _official_caption_matching(p, str(row["question"]), answer)
    return Judgement(score, prediction)


# ------------------------------------------------------------------------------ loading


def _validate_question(entry: object, task_type: str, location: str) -> tuple[str, str]:
    if not isinstance(entry, Mapping):
        raise AnnotationError(f"{location}: question is not a JSON object")
    question, answer = entry.get("question"), entry.get("answer")
    for name, value in (("question", question), ("answer", answer)):
        if not isinstance(value, str) or not value.strip():
            raise AnnotationError(f"{location}: field {name!r} must be a non-empty string")
    assert isinstance(question, str) and isinstance(answer, str)
    if task_type == "yes_no" and answer not in ("yes", "no"):
        raise AnnotationError(f"{location}: field 'answer' is {answer!r}; expected 'yes' or 'no'")
    if task_type == "multi-choice" and answer[:1] not in _mc_options(question):
        raise AnnotationError(
            f"{location}: field 'answer' {answer!r} does not start with an option letter of the "
            "question"
        )
    if task_type == "caption_matching":
        options = question.split("\n")[1:]
        if len(options) < 2 or any(": " not in line for line in options) or ": " not in answer:
            raise AnnotationError(
                f"{location}: a caption-matching question needs '<label>: <caption>' option "
                "lines and answer"
            )
    return question, answer


def _questions_dir(data_dir: Path) -> Path:
    if (data_dir / "questions").is_dir():
        return data_dir / "questions"
    return data_dir


def load_items(
    data_dir: str | os.PathLike, task_types: tuple[str, ...] = TASK_TYPES
) -> list[EvalItem]:
    """The questions of the rule-scorable task types present (layout in the module docstring)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise AnnotationError(f"{root}: no such data directory")
    questions_dir = _questions_dir(root)
    files = [
        (t, questions_dir / f"{t}.json")
        for t in task_types
        if (questions_dir / f"{t}.json").is_file()
    ]
    if not files:
        raise AnnotationError(
            f"{questions_dir}: none of {', '.join(t + '.json' for t in task_types)} found"
        )
    items = []
    for task_type, file in files:
        data = read_json_file(file)
        if not isinstance(data, dict):
            raise AnnotationError(f"{file}: expected an object of video id -> dimensions")
        for video_id, dimensions in data.items():
            if not isinstance(dimensions, dict):
                raise AnnotationError(
                    f"{file} video {video_id!r}: expected an object of dimensions"
                )
            for dimension, questions in dimensions.items():
                location = f"{file} video {video_id!r} dimension {dimension!r}"
                if dimension not in DIMENSIONS:
                    raise AnnotationError(
                        f"{location}: unknown dimension; expected one of {', '.join(DIMENSIONS)}"
                    )
                if not isinstance(questions, list):
                    raise AnnotationError(f"{location}: expected a list of questions")
                for index, entry in enumerate(questions):
                    question, answer = _validate_question(entry, task_type, f"{location} [{index}]")
                    row = {
                        "video_id": video_id,
                        "dimension": dimension,
                        "task_type": task_type,
                        "index": index,
                        "question": question,
                        "answer": answer,
                    }
                    items.append(
                        EvalItem(
                            id=f"{task_type}/{video_id}/{dimension}/{index}",
                            video=root / "videos" / f"{video_id}.mp4",
                            prompt=build_prompt(row),
                            answer=answer,
                            breakdown={"dimension": dimension, "task_type": task_type},
                            row=row,
                        )
                    )
    check_unique_ids(items, NAME)
    return items
