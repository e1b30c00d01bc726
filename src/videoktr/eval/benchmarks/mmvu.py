"""MMVU (Zhao et al., 2025), multiple-choice part: expert-level video questions in 27 subjects.

Why it is here: the Video-KTR paper reports MMVU's multiple-choice questions ("MMVU (mc)").
MMVU's authors score every answer with a GPT-4o judge (yale-nlp/MMVU ``acc_evaluation.py`` ->
``utils/eval_utils.py``, ``get_acc_async``: the judge extracts the answer letter and decides
correctness). Given a judge (``judge=``, see ``videoktr.eval.judge``), ``parser="official"`` runs
that flow; without one it scores with rules instead and says so in every summary ("rule-based
stand-in"): those numbers are not the official judge's.

Expected layout (the Hugging Face release yale-nlp/MMVU)::

    DATA/validation.json                 the official annotation list (the test split has no
                                         public answers); any other *.json list also works
    DATA/videos/<Subject>/<n>.mp4        the row's "video" URL path after ".../resolve/main/"

A row: ``id`` (e.g. "validation_1"), ``video`` (URL or path), ``question_type``
("multiple-choice" | "open-ended"), ``metadata.subject``, ``question``, ``choices``
(``{"A": ..., "E": ...}``), ``answer`` (a letter for multiple choice). Only multiple-choice rows
are loaded. Item ids are the row ``id``; the breakdown is ``discipline`` (``metadata.subject``).

Prompt: the official chain-of-thought prompt (``utils/constant.py``, ``MULTI_CHOICE_COT_PROMPT``,
the default of ``prepare_qa_inputs``), with the options as ``"A: text"`` lines
(``utils/prepare_input.py``, ``prepare_qa_text_input``), reproduced verbatim since it fixes the
answer format ("Therefore, the final answer is: $LETTER") that the rules below read.

Scoring, ``parser="official"`` (rule-based stand-in for the judge, which reads the final answer
the prompt asks for)::

    a = the content of the last complete <answer> block, if there is one:
        prediction = strict_choice(output)      (see videoktr.eval.common)
    otherwise, the last match in the output of
        "final answer" [optional "is"] (any case) [optional ":"], then optional "*", "(", "[",
        "$" and spaces, then one capital letter A-E not followed by a letter or digit,
        prediction = that letter
    otherwise prediction = strict_choice(whole output) (a bare label such as "B" or "(B)")
    score = 1.0 if prediction == answer else 0.0; no prediction scores 0.0

``parser="official"`` with a judge (the official flow, ``prepare_evaluation_message`` and
``get_acc_async``): every output, whatever it looks like, goes to the judge as a system message
(extract the final answer, compare it with the ground truth, reply as
``{"extracted_answer": str, "correct": bool}``) and a user message (the question, the options as
``"A: text"`` lines, the ground-truth letter, the full model response). Our wording of the
instruction is our own; the fields, the inputs and the decision rule are the official ones::

    reply = the judge's text, stripped; one surrounding ``` or ```json fence is removed
    parsed = json.loads(reply), which must be an object whose "extracted_answer" is a string
             and whose "correct" is a JSON boolean (other keys are ignored)
    score = 1.0 if parsed["correct"] is true else 0.0     (the judge's word decides, as
                                                            officially; "extracted_answer" is
                                                            only recorded, as the prediction)
    a reply that does not parse: score 0.0, prediction "", judge_verdict "unparseable"
                                 (the official script likewise counts a failed parse as wrong)

The official script asks GPT-4o through OpenAI structured outputs (the schema above, at most 128
tokens); a judge function given a chat API can do the same, e.g. with
``response_format={"type": "json_object"}``.

``parser="strict"``: :func:`videoktr.eval.common.strict_choice` only (the last answer block, or
the whole output, must be a bare label or a label with its option's text). It never asks a judge.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlparse

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

NAME = "mmvu"
PARSERS = ("official", "strict")
BREAKDOWN_FIELDS = ("discipline",)
BREAKDOWN_ORDER: dict[str, tuple[str, ...]] = {}
SCORER_NOTE = (
    "official scorer is a GPT-4o judge (yale-nlp/MMVU utils/eval_utils.py); these scores use "
    "the rule-based final-answer parser instead"
)
JUDGE_PARSERS = ("official",)
"""The parsers that ask a judge when one is given (see ``videoktr.eval.judge``)."""
JUDGED_SCORER_NOTE = (
    "official: yale-nlp/MMVU utils/eval_utils.py judge flow (the judge extracts the final answer "
    "and its 'correct' decides), with the judge named in 'scorer'"
)

JUDGE_INSTRUCTION = (
    "You grade a model's answer to a multiple-choice question. First find the final answer in "
    "the model's response, then check it against the ground-truth answer.\n"
    "Reply with only a JSON object with these two fields:\n"
    "{\n"
    '    "extracted_answer": the option letter (A, B, C, D or E) the response gives as its final '
    'answer, a single character ("" if it gives none),\n'
    '    "correct": true if that answer is the ground-truth answer, false otherwise\n'
    "}"
)
"""The judge's system message (our wording of the official instruction's content)."""

MULTI_CHOICE_COT_PROMPT = Template(
    "\nQuestion: $question\n$optionized_str\n\n"
    "Answer the given multiple-choice question step by step. Begin by explaining your reasoning "
    "process clearly. Conclude by stating the final answer using the following format: "
    "'Therefore, the final answer is: $$LETTER' (without quotes), where $$LETTER is one of the "
    "options. Think step by\nstep before answering."
)

_FINAL_ANSWER = re.compile(r"(?i:final\s+answer(?:\s+is)?)\s*:?\s*[*(\[$\s]*([A-E])(?![A-Za-z0-9])")
_HAS_ANSWER_BLOCK = re.compile(r"<answer>(?:(?!</?answer>).)*</answer>", re.DOTALL)


def format_options(choices: Mapping[str, str]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in choices.items())


def build_prompt(row: Mapping[str, Any]) -> str:
    return MULTI_CHOICE_COT_PROMPT.substitute(
        question=row["question"], optionized_str=format_options(row["choices"])
    )


def rule_prediction(output: str, choices: Mapping[str, str]) -> str:
    """The letter the ``official`` rule reads, or ``""`` (rules above)."""
    if not isinstance(output, str):
        return ""
    if _HAS_ANSWER_BLOCK.search(output):
        return strict_choice(output, choices) or ""
    matches = _FINAL_ANSWER.findall(output)
    if matches:
        letter = matches[-1]
        return letter if letter in choices else ""
    return strict_choice(output, choices) or ""


def judge_messages(row: Mapping[str, Any], output: str) -> list[dict[str, str]]:
    """The official judging request for one output: a system and a user message."""
    user = (
        f"Question: {row['question']}\n\nOptions:\n{format_options(row['choices'])}\n\n"
        f"Ground-truth answer: {row['answer']}\n\nModel response: {output}"
    )
    return [{"role": "system", "content": JUDGE_INSTRUCTION}, {"role": "user", "content": user}]


_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n?(.*?)\n?[ \t]*```", re.DOTALL)


def parse_judge_reply(reply: str) -> tuple[str, bool] | None:
    """``(extracted_answer, correct)`` from a judge reply, or ``None`` when it does not parse
    (rules in the module docstring)."""
    if not isinstance(reply, str):
        return None
    text = reply.strip()
    fenced = _FENCE.fullmatch(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    extracted, correct = data.get("extracted_answer"), data.get("correct")
    if not isinstance(extracted, str) or not isinstance(correct, bool):
        return None
    return extracted.strip(), correct


def judge(
    row: Mapping[str, Any],
    output: str,
    parser: str = "official",
    judge: Callable[[list[dict[str, str]]], str] | None = None,
) -> Judgement:
    """Score one output against one multiple-choice row (``answer``, ``choices``).

    With ``judge`` (a ``videoktr.eval.judge.Judge`` or any ``f(messages) -> str``) and
    ``parser="official"`` the judge decides (official flow above); its failures propagate
    (``JudgeError`` from a ``Judge``). With ``parser="strict"`` the judge is not asked.
    """
    check_parser(NAME, parser, PARSERS)
    choices = {k: v for k, v in row["choices"].items() if isinstance(v, str) and v != ""}
    answer = str(row["answer"]).strip()
    if parser == "official" and judge is not None:
        reply = judge(judge_messages(row, output if isinstance(output, str) else ""))
        parsed = parse_judge_reply(reply)
        if parsed is None:
            return Judgement(0.0, "", judge_reply=reply, judge_verdict="unparseable")
        extracted, correct = parsed
        verdict = "correct" if correct else "incorrect"
        return Judgement(float(correct), extracted, judge_reply=reply, judge_verdict=verdict)
    if parser == "official":
        prediction = rule_prediction(output, choices)
    else:
        prediction = strict_choice(output, choices) or ""
    return Judgement(1.0 if prediction == answer else 0.0, prediction)


def video_path(root: Path, video: str, location: str = "row") -> Path:
    """``videos/<Subject>/<n>.mp4`` from the row's URL (the part after ``/resolve/main/``),
    or the path itself, relative to ``root`` (and inside it: ``contained_video``)."""
    path = urlparse(video).path if "://" in video else video
    marker = "/resolve/main/"
    if marker in path:
        path = path.split(marker, 1)[1]
    return contained_video(root, path.lstrip("/"), location, "video")


def _subject(row: Mapping[str, Any], location: str) -> str:
    metadata = require(row, "metadata", dict, location)
    return require(metadata, "subject", str, f"{location} metadata")


def load_items(data_dir: str | os.PathLike) -> list[EvalItem]:
    """The multiple-choice questions of the annotation files (layout in the module docstring)."""
    path = Path(data_dir)
    if path.is_dir() and (path / "validation.json").is_file():
        files = [path / "validation.json"]
    else:
        files = annotation_files(path, (".json", ".jsonl"))
    root = data_root(path)
    items = []
    for file in files:
        for location, row in read_json_or_jsonl(file):
            question_type = require(row, "question_type", str, location)
            if question_type != "multiple-choice":
                continue
            item_id = str(require(row, "id", (str, int), location))
            require(row, "question", str, location)
            video = require(row, "video", str, location)
            choices = require(row, "choices", dict, location)
            offered = {k: v for k, v in choices.items() if isinstance(v, str) and v != ""}
            if not offered:
                raise AnnotationError(f"{location}: field 'choices' has no non-empty option")
            answer = require(row, "answer", str, location).strip()
            if answer not in offered:
                raise AnnotationError(
                    f"{location}: field 'answer' is {answer!r}, not one of {sorted(offered)}"
                )
            items.append(
                EvalItem(
                    id=item_id,
                    video=video_path(root, video, location),
                    prompt=build_prompt(row),
                    answer=answer,
                    breakdown={"discipline": _subject(row, location)},
                    row=row,
                )
            )
    check_unique_ids(items, NAME)
    return items
