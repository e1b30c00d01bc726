"""TempCompass (Liu et al., 2024): does the model perceive time (action, speed, direction, order,
attribute change) rather than single frames?

Why it is here: TempCompass is one of the Video-KTR paper's benchmarks, and the temporal
dimensions are what temporal-sensitive key tokens are meant to improve. Its official evaluation
(llyx97/TempCompass, ``eval_multi-choice.py``, ``eval_yes_no.py``, ``eval_caption_matching.py``)
first applies hand-written matching rules and sends the outputs the rules cannot match to a
ChatGPT judge. Given a judge (``judge=``, see ``videoktr.eval.judge``), ``parser="official"`` runs
that whole flow; without one an unmatched output scores 0, exactly what the official scripts do
with ``--disable_llm``, and summaries call the numbers a "rule-based stand-in". The fourth task
type, captioning, is judged by an LLM only and is not loaded.

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

Scoring, ``parser="official"``: the scripts at the repository's current revision,
``CURRENT_REVISION`` (c2ec41e, 2024-06-10). ``p`` is the output with every ``"</s>"`` removed,
then stripped of surrounding whitespace.

* multi-choice (``eval_multi-choice.py``, ``main``): 1 if ``p == answer`` (the full "B. text");
  else if ``p`` is one of A, B, C, D: ``p == answer[0]``; else if ``p`` starts with "A." ... "D.":
  the part before the first "." equals ``answer[0]``; else if it starts with "A)" ... "D)": the
  part before the first ")" does; else no match: 0.
* yes/no (``eval_yes_no.py``, ``extract_pred``): lower-case ``p``; starts with "yes" -> yes,
  starts with "no" -> no, else no match (0); score ``prediction == answer``.
* caption matching (``eval_caption_matching.py``, ``eval_rule``): the option lines are the
  question's lines after the first; each is "<label>: <sentence>" (split at the first ": ").
  The labels are the options' ("Sentence A", "Option 1") followed by their bare indices ("A",
  "1": "Sentence ", "Option ", "Caption " removed). The prediction is, later rules overriding
  earlier ones: an option line equal to ``p``; a sentence equal to ``p`` or to the part of ``p``
  after its first ") "; a label equal to ``p`` or to ``p`` with every "." removed. No
  prediction: 0. Else 1 if it equals the answer, the answer's part before the first ":", its
  part after the first ": ", or the answer label's second word (its bare index).

``parser="official_2024_03"``: the same scripts at 75361fd (2024-03-23), as first released
with the benchmark: ``p`` is not stripped (so "A\\n", " A", "\\nC" and " No"
match nothing), and caption matching knows only the full labels ("B" for "Sentence B: ..."
matches nothing). ``REVISIONS`` maps each parser to its revision; every summary names it.

Quirks kept: "(A)" and reasoning outputs never match (the official judge would read them; here
they score 0 without one); "nope", "none" and "not sure" read as "no", "yesterday" as "yes"; a
sentence containing ": " is cut there.

The judge fallback (``parser="official"`` with a judge; ``eval_*.py`` ``main`` when
``--disable_llm`` is off): only when the rule above matches nothing, the judge gets a system
message (a generic assistant line) and a user message: an instruction (decide whether the
prediction is correct given the question and the ground truth; answer "Correct" or "Incorrect")
followed by ``"<Multi-Choice|Yes/No|Caption Matching> Question:\n<question>\nGround-Truth Answer:
<answer>\nModel Prediction: <p>"``. The instruction's wording is ours; the inputs and the
decision rule are the official ones (``utils/eval_utils.py``, ``llm_output_to_rating``, on the
reply stripped)::

    neither "Correct" nor "Incorrect" in reply (case-sensitive)  -> unparseable: score 0
    reply starts with "Correct"                                   -> 1
    reply starts with "Incorrect"                                 -> 0
    "Correct" in reply and "Incorrect" not in reply               -> 1
    otherwise ("Incorrect" in reply)                              -> 0

The official script asks again (up to 10 times, sampling at temperature 1) when the reply is
unparseable and scores 0 after that; here an unparseable reply scores 0 at once and is recorded
(``judge_verdict: "unparseable"``); only exceptions are retried. A judged row's prediction is
``None`` (the judge rates, it does not extract).

``parser="strict"`` never asks a judge. It reads :func:`videoktr.eval.common.answer_text` (last answer block, else the
whole output, stripped): multi-choice by ``strict_choice`` over the question's options;
yes/no when the first word (letters only, any case) is exactly "yes" or "no"; caption matching
when the text is one option's label ("Caption A", "option 1", with an optional final "." or
":"), its bare index ("A", "(A)", "1"), its full line, or its sentence (up to case, spacing
and a final period).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..common import (
    AnnotationError,
    EvalItem,
    Judgement,
    answer_text,
    check_parser,
    check_unique_ids,
    contained_video,
    read_json_file,
    strict_choice,
)

NAME = "tempcompass"
PARSERS = ("official", "strict", "official_2024_03")
CURRENT_REVISION = "c2ec41e (2024-06-10)"
"""The commit of llyx97/TempCompass whose evaluation scripts ``parser="official"`` reproduces
(its HEAD: the last change to ``eval_*.py``)."""
REVISIONS = {"official": CURRENT_REVISION, "official_2024_03": "75361fd (2024-03-23)"}
"""The revision of the official scripts each rule-based parser reproduces."""
TASK_TYPES = ("multi-choice", "yes_no", "caption_matching")
DIMENSIONS = ("action", "direction", "speed", "order", "attribute_change")
BREAKDOWN_FIELDS = ("dimension", "task_type")
BREAKDOWN_ORDER = {"dimension": DIMENSIONS}
SCORER_NOTE = (
    f"official: llyx97/TempCompass at {CURRENT_REVISION}, rule-based matching only (as --disable_llm); "
    "the official ChatGPT fallback for unmatched outputs is not run (they score 0)"
)
PARSER_NOTES = {
    "official_2024_03": (
        f"official_2024_03: llyx97/TempCompass at {REVISIONS['official_2024_03']} (outputs not stripped, no bare "
        "caption index), rule-based matching only unless a judge is named in 'scorer'"
    ),
}
"""What the benchmark's other parsers reproduce, for summaries."""
JUDGE_PARSERS = ("official", "official_2024_03")
"""The parsers that ask a judge (for unmatched outputs) when one is given."""
JUDGED_SCORER_NOTE = (
    f"official: llyx97/TempCompass at {CURRENT_REVISION}, rule-based matching, then the LLM judge for "
    "unmatched outputs (utils/eval_utils.py llm_output_to_rating), with the judge named in 'scorer'"
)
JUDGE_SYSTEM = "You are a helpful assistant that answers questions."
"""The judge's system message (the official one is a generic assistant line too)."""
JUDGE_HEADERS = {
    "multi-choice": "Multi-Choice Question",
    "yes_no": "Yes/No Question",
    "caption_matching": "Caption Matching Question",
}
_JUDGE_KINDS = {
    "multi-choice": "multiple-choice question",
    "yes_no": "yes/no question",
    "caption_matching": "caption matching question",
}
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


# Each official rule returns (score, prediction), or None when it matches nothing (the case the
# official scripts send to the judge).


def _official_multi_choice(p: str, answer: str) -> tuple[float, str] | None:
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
    return None


def _official_yes_no(p: str, answer: str) -> tuple[float, str] | None:
    lowered = p.lower()
    if lowered.startswith("yes"):
        prediction = "yes"
    elif lowered.startswith("no"):
        prediction = "no"
    else:
        return None
    return float(prediction == answer), prediction


def _caption_options(question: str) -> list[tuple[str, str, str]]:
    """``(line, label, sentence)`` for each option line of a caption-matching question."""
    options = []
    for line in question.split("\n")[1:]:
        label, _, rest = line.partition(": ")
        sentence = rest.split(": ")[0]
        options.append((line, label, sentence))
    return options


def _bare_index(label: str) -> str:
    """"Sentence A" -> "A", "Option 1" -> "1" (``eval_caption_matching.py`` at HEAD)."""
    return label.replace("Sentence ", "").replace("Option ", "").replace("Caption ", "")


def _official_caption_matching(p: str, question: str, answer: str, revision: str) -> tuple[float, str] | None:
    options = _caption_options(question)
    labels = [label for _, label, _ in options]
    if revision == CURRENT_REVISION:
        labels += [_bare_index(label) for label in labels]
    prediction = None
    for line, _, _ in options:
        if line == p:
            prediction = line
    for _, _, sentence in options:
        if sentence == p or (") " in p and sentence == p.split(") ")[1]):
            prediction = sentence
    for label in labels:
        if label == p or label == p.replace(".", ""):
            prediction = label
    if prediction is None:
        return None
    accepted = {answer, answer.split(":")[0]}
    if ": " in answer:
        accepted.add(answer.split(": ")[1])
        label_words = answer.split(": ")[0].split()
        if revision == CURRENT_REVISION and len(label_words) > 1:
            accepted.add(label_words[1])  # the answer's bare index, "A" of "Sentence A"
    return float(prediction in accepted), prediction


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


def judge_messages(row: Mapping[str, Any], prediction: str) -> list[dict[str, str]]:
    """The official fallback request for one unmatched output ``prediction`` (``</s>`` removed)."""
    task_type = task_type_of(row)
    instruction = (
        f"You are given a {_JUDGE_KINDS[task_type]}, its ground-truth answer and the prediction "
        "of a question answering (QA) model. Using the question and the ground-truth answer, "
        'decide whether the prediction is correct. Respond "Correct" if it is and "Incorrect" '
        "if it is not."
    )
    user = (
        f"{instruction}\n\n{JUDGE_HEADERS[task_type]}:\n{row['question']}\n"
        f"Ground-Truth Answer: {row['answer']}\nModel Prediction: {prediction}"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_judge_reply(reply: str) -> int | None:
    """The official rating (1 or 0) of a judge reply, or ``None`` when it is unparseable
    (``llm_output_to_rating`` on the stripped reply; rules in the module docstring)."""
    if not isinstance(reply, str):
        return None
    text = reply.strip()
    if "Correct" not in text and "Incorrect" not in text:
        return None
    if text.startswith("Correct"):
        return 1
    if text.startswith("Incorrect"):
        return 0
    if "Correct" in text and "Incorrect" not in text:
        return 1
    return 0


def judge(
    row: Mapping[str, Any],
    output: str,
    parser: str = "official",
    judge: Callable[[list[dict[str, str]]], str] | None = None,
) -> Judgement:
    """Score one output against one flat question row (``question``, ``answer``, ``task_type``).

    With ``judge`` (a ``videoktr.eval.judge.Judge`` or any ``f(messages) -> str``) and
    ``parser="official"``, an output the rules cannot match goes to the judge (official
    fallback above); the judge's failures propagate (``JudgeError`` from a ``Judge``).
    """
    check_parser(NAME, parser, PARSERS)
    task_type = task_type_of(row)
    if parser == "strict":
        score, prediction = _strict(row, output, task_type)
        return Judgement(score, prediction)
    revision = REVISIONS[parser]
    p = output.replace("</s>", "") if isinstance(output, str) else ""
    if revision == CURRENT_REVISION:
        p = p.strip()
    answer = str(row["answer"])
    if task_type == "multi-choice":
        matched = _official_multi_choice(p, answer)
    elif task_type == "yes_no":
        matched = _official_yes_no(p, answer)
    else:
        matched = _official_caption_matching(p, str(row["question"]), answer, revision)
    if matched is not None:
        return Judgement(*matched)
    if judge is None:
        return Judgement(0.0, "")
    reply = judge(judge_messages(row, p))
    rating = parse_judge_reply(reply)
    if rating is None:
        return Judgement(0.0, None, judge_reply=reply, judge_verdict="unparseable")
    verdict = "correct" if rating else "incorrect"
    return Judgement(float(rating), None, judge_reply=reply, judge_verdict=verdict)


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
                            video=contained_video(root, Path("videos") / f"{video_id}.mp4", location,
                                                  "video id"),
                            prompt=build_prompt(row),
                            answer=answer,
                            breakdown={"dimension": dimension, "task_type": task_type},
                            row=row,
                        )
                    )
    check_unique_ids(items, NAME)
    return items
