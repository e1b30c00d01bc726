"""The predictions file: one JSON line per question, written as soon as it is answered, read back
to resume a run or re-score it.

A line::

    {"id": ..., "benchmark": ..., "model": the model's path, "parser": ..., "scorer": what scored it,
     "video": path, "output": generated text, "prediction": what the parser read,
     "score": float, "counted": bool, "answer": reference,
     <breakdown fields, e.g. "question_type": "SR">, "judge_reply": null or the judge's text,
     "judge_verdict": null, "correct", "incorrect" or "unparseable",
     "error": null or message, "error_source": null, "video" or "judge", "row": annotation}

A half-written last line (a kill in the middle of a write) is cut off and its question asked
again; a question is never written twice; rows re-judged later are replaced in place,
atomically (a temporary file renamed over the original). Beside ``P.jsonl``, ``P.run.json``
records the benchmark, model and settings the file's answers came from; a resume with others
is refused (:func:`check_run_record`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .common import EvalItem, Judgement

__all__ = ["PredictionsFileError", "append_row", "check_run_record", "is_video_error", "prediction_row",
           "read_predictions", "rejudged_row", "replace_rows", "rewrite_without", "run_record_path"]

#: Settings that do not change what a question's answer is, so a resume may change them.
RESUMABLE_SETTINGS = ("batch_size", "limit")

_RESERVED_KEYS = {
    "id",
    "benchmark",
    "parser",
    "scorer",
    "judge_reply",
    "judge_verdict",
    "error_source",
    "video",
    "output",
    "prediction",
    "score",
    "counted",
    "answer",
    "error",
    "row",
    "model",
}


class PredictionsFileError(ValueError):
    """A predictions file cannot be resumed or re-scored; the message names file and line."""


def read_predictions(path: str | os.PathLike, *, repair: bool = False) -> list[dict[str, Any]]:
    """The rows of a predictions JSONL file, in order.

    A last line that is cut off (no final newline and not valid JSON: the run was killed while
    writing it) is dropped, and with ``repair=True`` also removed from the file. Any other
    invalid line, a row without a string ``id``, or an id that occurs twice raises
    ``PredictionsFileError`` naming the line: such a file was edited by hand, and guessing which
    row to keep could lose or duplicate results.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    offset = 0
    good_end = 0
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        is_last = number == len(lines)
        line_end = offset + len(raw) + (0 if is_last else 1)
        if raw.strip():
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if is_last:  # an interrupted write: no newline yet
                    break
                raise PredictionsFileError(f"{path} line {number}: invalid JSON ({exc})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise PredictionsFileError(f"{path} line {number}: row has no string 'id'")
            if row["id"] in seen:
                raise PredictionsFileError(
                    f"{path} line {number}: id {row['id']!r} already on line {seen[row['id']]}"
                )
            seen[row["id"]] = number
            rows.append(row)
        good_end = line_end
        offset = line_end
    if repair and good_end < len(data):
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    elif repair and data and not data.endswith(b"\n"):
        with path.open("ab") as handle:  # a complete last row without its newline
            handle.write(b"\n")
    return rows


def _write_rows_atomically(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` by ``rows`` (a temporary file, fsynced, then renamed over it)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def rewrite_without(path: Path, drop_ids: set[str]) -> None:
    """Atomically rewrite ``path`` keeping every row whose id is not in ``drop_ids``."""
    _write_rows_atomically(
        path, [row for row in read_predictions(path) if row["id"] not in drop_ids]
    )


def replace_rows(path: Path, replacements: Mapping[str, Mapping[str, Any]]) -> None:
    """Atomically rewrite ``path`` with the rows whose id is in ``replacements`` replaced (in
    place, order kept); every other row is written back as read."""
    _write_rows_atomically(
        path, [replacements.get(row["id"], row) for row in read_predictions(path)]
    )


def run_record_path(output_file: str | os.PathLike) -> Path:
    """Where the model and settings of a predictions file are kept: ``P.run.json`` beside
    ``P.jsonl``."""
    output_file = Path(output_file)
    return output_file.with_name(output_file.stem + ".run.json")


def _differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(recorded) | set(wanted))
    return [f"{key} {recorded.get(key)!r} -> {wanted.get(key)!r}" for key in keys
            if recorded.get(key) != wanted.get(key)]


def check_run_record(output_file: str | os.PathLike, record: Mapping[str, Any], *, overwrite: bool = False) -> None:
    """Make ``output_file`` hold predictions of the run described by ``record`` (benchmark,
    model and the settings that shape an answer) before any question is asked.

    A new file gets its record written beside it. An existing one resumes only when its record
    is the same: a resume that mixed two models, or two frame counts, in one file would report
    a summary that belongs to neither. ``overwrite=True`` removes the old predictions and
    starts over. A file written before records were kept is checked row by row (rows that
    name a model must name this one) and then gets its record.
    """
    output_file = Path(output_file)
    record_file = run_record_path(output_file)
    record = json.loads(json.dumps(dict(record)))  # the form it takes once read back
    if overwrite:
        output_file.unlink(missing_ok=True)
        record_file.unlink(missing_ok=True)
    recorded: dict[str, Any] | None = None
    if record_file.exists():
        try:
            recorded = json.loads(record_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PredictionsFileError(f"{record_file}: not a readable run record ({exc})") from exc
    elif output_file.exists():
        models = {row.get("model") for row in read_predictions(output_file)} - {None}
        if models - {record.get("model")}:
            recorded = {**record, "model": sorted(map(str, models))[0]}
    if recorded is not None:
        differences = _differences(recorded, record)
        if differences:
            raise PredictionsFileError(
                f"{output_file} holds predictions of another run ({'; '.join(differences)}): a resume must "
                "use the same model and settings; use another output file, or overwrite=True (--overwrite) "
                "to start over"
            )
        return
    output_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _verdict_fields(judgement: Judgement | None) -> dict[str, Any]:
    return {
        "prediction": None if judgement is None else judgement.prediction,
        "score": 0.0 if judgement is None else judgement.score,
        "counted": True if judgement is None else judgement.counted,
        "judge_reply": None if judgement is None else judgement.judge_reply,
        "judge_verdict": None if judgement is None else judgement.judge_verdict,
    }


def prediction_row(
    benchmark: str,
    parser: str,
    scorer: str,
    item: EvalItem,
    output: str | None,
    judgement: Judgement | None,
    error: str | None,
    error_source: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    verdict = _verdict_fields(judgement)
    row: dict[str, Any] = {
        "id": item.id,
        "benchmark": benchmark,
        "model": model,
        "parser": parser,
        "scorer": scorer,
        "video": str(item.video),
        "output": output,
        "prediction": verdict["prediction"],
        "score": verdict["score"],
        "counted": verdict["counted"],
        "answer": item.answer,
    }
    for name, value in item.breakdown.items():
        if name in _RESERVED_KEYS:  # a module bug, not a data problem
            raise RuntimeError(f"breakdown field {name!r} collides with a predictions key")
        row[name] = value
    row["judge_reply"] = verdict["judge_reply"]
    row["judge_verdict"] = verdict["judge_verdict"]
    row["error"] = error
    row["error_source"] = error_source
    row["row"] = item.row
    return row


def rejudged_row(
    row: Mapping[str, Any],
    parser: str,
    scorer: str,
    judgement: Judgement | None,
    error: str | None,
) -> dict[str, Any]:
    """``row`` (a stored prediction with an output) with a new verdict, or a judge error."""
    updated = dict(row)
    updated.update(parser=parser, scorer=scorer, **_verdict_fields(judgement))
    updated["error"] = error
    updated["error_source"] = None if error is None else "judge"
    return updated


def is_video_error(row: Mapping[str, Any]) -> bool:
    """An error row without a model output (the video could not be read)."""
    return bool(row.get("error")) and row.get("error_source") != "judge"




def append_row(handle: Any, row: Mapping[str, Any]) -> None:
    """Write one row to an open predictions file and flush it."""
    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    handle.flush()


