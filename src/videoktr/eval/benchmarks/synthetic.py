"""Video-R1-format question files, e.g. the synthetic world's ``test.jsonl``, with a ``kind`` key.

Why it is here: the synthetic world (``videoktr.synthetic``) writes its held-out questions in the
same Video-R1 row format the trainer reads, so a trained model is evaluated with the same prompt
and the same reward it was trained with, and the result is broken down by the world's question
``kind`` (what each question tests). The same module scores any Video-R1-format evaluation file,
including the converted benchmark files Video-R1 and Video-KTR ship (``eval_videomme.json``...).

Expected layout::

    DATA/test.jsonl        (or DATA/test.json, or DATA given as the file itself)
    DATA/<row "path">      each row's video, relative to the file's folder (Video-R1 writes "./...")

When ``DATA`` is a directory it must hold exactly one of ``test.jsonl`` / ``test.json``, else
exactly one ``*.jsonl`` / ``*.json`` file. Rows are validated by ``videoktr.data.VideoR1Dataset``
(``on_bad_sample="raise"``: a malformed row is an error naming file, row and field); a video path
may not leave the file's folder. Only ``data_type: "video"`` rows are accepted.

Extra keys: ``kind`` (str, the breakdown; ``"unspecified"`` when a row has none) and an id:
``id``, else ``problem_id``, else the row's position (``"line <n>"`` / ``"index <i>"``).

Prompt: ``videoktr.data.build_prompt_text``, the training prompt (think/answer tags and the
answer-format instruction of the row's ``problem_type``).

Scoring:

* ``parser="official"`` (also ``"strict"``, the same rule): ``videoktr.rewards.accuracy_reward``,
  the training reward: the last answer block, scored by ``problem_type`` (an option letter in a
  label form for multiple choice; exact value for numerical; 1 - WER for OCR; mean ROUGE F1 for
  free-form; 1 - relative error for regression). Scores of the last three are fractional.
* ``parser="video_r1"``: the rule of Video-R1's and Video-KTR's ``src/eval_bench.py``
  (``reward_fn``; zywang0104/Video-KTR), with which the Video-KTR paper's VideoMMMU, MMVU,
  TempCompass and VideoMME numbers were computed from Video-R1-format files::

      a = strip(first match of r"<answer>\\s*(.*?)\\s*</answer>" in output), or the whole
          output when there is none (or the block is empty)
      g = strip(first such match in the solution), "" when the solution has none
      multiple choice   1.0 if strip(a) == g else 0.0      ("B." or "(B)" against "B" is 0.0)
      numerical         0.0 if a and g differ in having a "." or ","; else
                        1.0 if round(float(a), 2) == round(float(g), 2) (commas removed) else 0.0
      regression        mean over t in 0.50, 0.55, ..., 0.95 of [|a - g| / (|g| + 1e-8) < 1 - t],
                        computed in float32 as the official code does (torch), so an answer
                        exactly on a threshold fails it there (7.5 for 10: 0.5, not 0.6)
      other types       0.0
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videoktr.data import DatasetError, VideoR1Dataset, build_prompt_text
from videoktr.rewards import accuracy_reward, extract_answer

from ..common import AnnotationError, EvalItem, Judgement, check_parser, check_unique_ids

NAME = "synthetic"
PARSERS = ("official", "strict", "video_r1")
BREAKDOWN_FIELDS = ("kind",)
BREAKDOWN_ORDER: dict[str, tuple[str, ...]] = {}
SCORER_NOTE = "official: videoktr.rewards.accuracy_reward (the training reward)"
DEFAULT_FILES = ("test.jsonl", "test.json")
UNSPECIFIED_KIND = "unspecified"

_FIRST_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


def _first_answer(text: str) -> str:
    match = _FIRST_ANSWER.search(text) if isinstance(text, str) else None
    return match.group(1).strip() if match else ""


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def video_r1_score(row: Mapping[str, Any], output: str) -> tuple[float, str]:
    """``(score, prediction)`` by Video-R1's evaluation rule (see the module docstring)."""
    prediction = _first_answer(output) or (output if isinstance(output, str) else "")
    reference = _first_answer(str(row.get("solution", "")))
    problem_type = row.get("problem_type")
    if problem_type == "multiple choice":
        return (1.0 if prediction.strip() == reference.strip() else 0.0), prediction
    if problem_type == "numerical":
        if (("." in reference) or ("," in reference)) != (
            ("." in prediction) or ("," in prediction)
        ):
            return 0.0, prediction
        gold, pred = _number(reference), _number(prediction)
        if gold is None or pred is None:
            return 0.0, prediction
        return (1.0 if round(gold, 2) == round(pred, 2) else 0.0), prediction
    if problem_type == "regression":
        gold, pred = _number(reference), _number(prediction)
        if gold is None or pred is None:
            return 0.0, prediction
        return _mean_relative_accuracy(pred, gold), prediction
    return 0.0, prediction


def _mean_relative_accuracy(prediction: float, gold: float) -> float:
    """``mean_relative_accuracy`` of Video-R1's ``eval_bench.py``, in float32 through torch as
    there: in float64 a relative error of exactly 0.25 would pass the 0.75 threshold, whose
    float32 value (0.25) makes the official ``<`` fail. A non-finite value (a float32 overflow
    included) scores 0, as NaN and inf comparisons do there."""
    import torch  # here, not at the top: listing the benchmarks must not load torch

    prediction_32 = torch.tensor(prediction, dtype=torch.float32)
    gold_32 = torch.tensor(gold, dtype=torch.float32)
    relative_error = torch.abs(prediction_32 - gold_32) / (torch.abs(gold_32) + 1e-8)
    thresholds = torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32)
    return float((relative_error < (1 - thresholds)).float().mean().item())


def judge(row: Mapping[str, Any], output: str, parser: str = "official") -> Judgement:
    """Score one output against one Video-R1 row (``problem_type``, ``solution``, ``options``)."""
    check_parser(NAME, parser, PARSERS)
    if parser == "video_r1":
        score, prediction = video_r1_score(row, output)
        return Judgement(float(score), prediction)
    return Judgement(float(accuracy_reward(output, row)), extract_answer(output))


def build_prompt(row: Mapping[str, Any]) -> str:
    """The training prompt for a validated row (``videoktr.data.build_prompt_text``)."""
    from videoktr.data import Sample

    sample = Sample(
        row=dict(row),
        path=Path(str(row.get("path", ""))),
        data_type=str(row["data_type"]),
        problem=str(row["problem"]),
        problem_type=str(row["problem_type"]),
        options=list(row.get("options") or []),
        solution=str(row["solution"]),
        row_id=0,
        location="row",
    )
    return build_prompt_text(sample)


def _dataset_file(data_dir: str | os.PathLike) -> Path:
    path = Path(data_dir)
    if path.is_file():
        return path
    if not path.is_dir():
        raise AnnotationError(f"{path}: no such data directory or question file")
    for name in DEFAULT_FILES:
        if (path / name).is_file():
            return path / name
    candidates = sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".jsonl"))
    if len(candidates) != 1:
        raise AnnotationError(
            f"{path}: expected test.jsonl, test.json or exactly one .json/.jsonl file, found "
            f"{[p.name for p in candidates] or 'none'}"
        )
    return candidates[0]


def _item_id(row: Mapping[str, Any], location: str, row_label: str) -> str:
    for key in ("id", "problem_id"):
        if key in row:
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
                raise AnnotationError(
                    f"{location}: field {key!r} must be a non-empty string or int"
                )
            return str(value)
    return row_label


def load_items(data_dir: str | os.PathLike) -> list[EvalItem]:
    """Every row of the question file (layout in the module docstring), in file order."""
    file = _dataset_file(data_dir)
    try:
        dataset = VideoR1Dataset(file, on_bad_sample="raise")
    except DatasetError as exc:
        raise AnnotationError(str(exc)) from exc
    items = []
    for sample in dataset.samples:
        location = sample.location
        if sample.data_type != "video":
            raise AnnotationError(
                f"{location}: field 'data_type' is {sample.data_type!r}; only video rows can be "
                "evaluated"
            )
        kind = sample.row.get("kind", UNSPECIFIED_KIND)
        if not isinstance(kind, str) or not kind.strip():
            raise AnnotationError(f"{location}: field 'kind' must be a non-empty string")
        row_label = location.removeprefix(f"{file} ")
        items.append(
            EvalItem(
                id=_item_id(sample.row, location, row_label),
                video=sample.path,
                prompt=build_prompt_text(sample),
                answer=sample.answer,
                breakdown={"kind": kind},
                row=sample.row,
            )
        )
    check_unique_ids(items, f"{NAME} ({file})")
    return items
