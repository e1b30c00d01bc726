"""Run a model on a benchmark, stream predictions to JSONL, resume, re-score and summarise.

Why this shape: benchmark runs are long (Video-Holmes is 1,837 questions on 1-5 minute films),
so every finished question is written to the predictions file at once, one JSON line each, and a
rerun with the same file skips the questions already there (by id). A killed run loses at most
the batch in flight; a half-written last line (a kill in the middle of a write) is cut off and
its question asked again; a question is never written twice. A missing or undecodable video is a
fact about the data, not a crash: it becomes an error row (score 0, counted, ``error`` naming the
file) and the run goes on. Scoring is pure and separate from generation, so
:func:`score_predictions` re-scores a predictions file (with either parser) without the model.

Generation follows the official Qwen-VL evaluation settings of Video-Holmes and Video-R1
(``temperature=0.1, top_p=0.001, max_new_tokens=1024``); ``temperature <= 0`` is greedy.
Frames: ``num_frames`` frames sampled uniformly over the whole video (the middle frame of each of
``num_frames`` equal segments; every frame of a shorter video), which is
``videoktr.data.decode_video`` with ``min_frames = max_frames = num_frames`` (see
:func:`decode_uniform`); or, with ``fps``, frames at that rate, between 4 and ``num_frames``.

A predictions line::

    {"id": ..., "benchmark": ..., "parser": ..., "video": path, "output": generated text,
     "prediction": what the parser read, "score": float, "counted": bool, "answer": reference,
     <breakdown fields, e.g. "question_type": "SR">, "error": null or message, "row": annotation}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from videoktr.data import DecodedVideo, VideoDecodeError, decode_video, pixel_budget_size

from .benchmarks import get_benchmark
from .common import EvalItem, Judgement, check_parser

__all__ = [
    "EvalSummary",
    "PredictionsFileError",
    "decode_uniform",
    "read_predictions",
    "run_evaluation",
    "score_predictions",
    "summarize",
    "write_summary",
]

_RESERVED_KEYS = {
    "id",
    "benchmark",
    "parser",
    "video",
    "output",
    "prediction",
    "score",
    "counted",
    "answer",
    "error",
    "row",
}


class PredictionsFileError(ValueError):
    """A predictions file cannot be resumed or re-scored; the message names file and line."""


# ------------------------------------------------------------------------------ summary


@dataclass
class EvalSummary:
    """Accuracy of one benchmark run.

    Attributes:
        benchmark, parser: what was scored and how (``parser`` names the rule every score used).
        count: questions summarised (error rows included).
        counted: questions in the accuracy's denominator: ``count`` minus those the official
            aggregation drops (Video-MME: no letter extracted; VideoMMMU: empty response).
        correct: sum of the counted questions' scores.
        errors: questions whose video could not be read (score 0, counted).
        accuracy: ``correct / counted`` (``None`` when nothing is counted).
        breakdown: ``{field: {value: {"count", "counted", "correct", "accuracy"}}}`` for each of
            the benchmark's breakdown fields (e.g. ``question_type``, ``duration``, ``kind``).
        scorer_note: what the benchmark's "official" parser reproduces.
        settings: generation and sampling settings of the run (empty when re-scored).
        predictions_file: where the per-question rows are.
    """

    benchmark: str
    parser: str
    count: int
    counted: int
    correct: float
    errors: int
    accuracy: float | None
    breakdown: dict[str, dict[str, dict[str, Any]]]
    scorer_note: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    predictions_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_table(self) -> str:
        """A plain-text table: overall accuracy, then one block per breakdown field."""

        def percent(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.1f}"

        lines = [
            f"{self.benchmark}  (parser: {self.parser})",
            f"{'':<28}{'acc %':>8}{'n':>8}",
            f"{'overall':<28}{percent(self.accuracy):>8}{self.counted:>8}",
        ]
        for name, values in self.breakdown.items():
            lines.append(f"-- {name}")
            for value, stats in values.items():
                label = value if len(value) <= 26 else value[:25] + "~"
                lines.append(f"  {label:<26}{percent(stats['accuracy']):>8}{stats['counted']:>8}")
        notes = [f"questions {self.count}, video errors {self.errors}"]
        if self.counted != self.count:
            notes.append(f"not counted by the official aggregation {self.count - self.counted}")
        lines.append("; ".join(notes))
        if self.scorer_note:
            lines.append(self.scorer_note)
        return "\n".join(lines)


def summarize(
    benchmark: str,
    records: Iterable[tuple[Mapping[str, str], Judgement | None]],
    parser: str,
    *,
    settings: Mapping[str, Any] | None = None,
    predictions_file: str | os.PathLike | None = None,
) -> EvalSummary:
    """Aggregate ``(breakdown, judgement)`` pairs; ``judgement=None`` is an error row (score 0,
    counted). Accuracy is the mean score over counted questions, overall and per category."""
    module = get_benchmark(benchmark)
    breakdown: dict[str, dict[str, dict[str, Any]]] = {
        name: {value: _empty_stats() for value in module.BREAKDOWN_ORDER.get(name, ())}
        for name in module.BREAKDOWN_FIELDS
    }
    count = counted = errors = 0
    correct = 0.0
    for categories, judgement in records:
        count += 1
        errors += judgement is None
        is_counted = judgement is None or judgement.counted
        score = 0.0 if judgement is None else judgement.score
        if is_counted:
            counted += 1
            correct += score
        for name in module.BREAKDOWN_FIELDS:
            stats = breakdown[name].setdefault(str(categories.get(name, "")), _empty_stats())
            stats["count"] += 1
            if is_counted:
                stats["counted"] += 1
                stats["correct"] += score
    for values in breakdown.values():
        for stats in values.values():
            stats["accuracy"] = stats["correct"] / stats["counted"] if stats["counted"] else None
    return EvalSummary(
        benchmark=benchmark,
        parser=parser,
        count=count,
        counted=counted,
        correct=correct,
        errors=errors,
        accuracy=correct / counted if counted else None,
        breakdown=breakdown,
        scorer_note=module.SCORER_NOTE if parser == "official" else f"{parser} parser",
        settings=dict(settings or {}),
        predictions_file=None if predictions_file is None else str(predictions_file),
    )


def _empty_stats() -> dict[str, Any]:
    return {"count": 0, "counted": 0, "correct": 0.0, "accuracy": None}


def write_summary(summary: EvalSummary, path: str | os.PathLike) -> Path:
    """Write ``summary.to_dict()`` as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


# ------------------------------------------------------------------------------ predictions file


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


def _rewrite_without(path: Path, drop_ids: set[str]) -> None:
    """Atomically rewrite ``path`` keeping every row whose id is not in ``drop_ids``."""
    kept = [row for row in read_predictions(path) if row["id"] not in drop_ids]
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for row in kept:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _prediction_row(
    benchmark: str,
    parser: str,
    item: EvalItem,
    output: str | None,
    judgement: Judgement | None,
    error: str | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": item.id,
        "benchmark": benchmark,
        "parser": parser,
        "video": str(item.video),
        "output": output,
        "prediction": None if judgement is None else judgement.prediction,
        "score": 0.0 if judgement is None else judgement.score,
        "counted": True if judgement is None else judgement.counted,
        "answer": item.answer,
    }
    for name, value in item.breakdown.items():
        if name in _RESERVED_KEYS:  # a module bug, not a data problem
            raise RuntimeError(f"breakdown field {name!r} collides with a predictions key")
        row[name] = value
    row["error"] = error
    row["row"] = item.row
    return row


# ------------------------------------------------------------------------------ frames and inputs


def decode_uniform(path: str | os.PathLike, num_frames: int) -> DecodedVideo:
    """``num_frames`` frames spread uniformly over the whole video (all frames of a shorter one).

    ::

        n = min(num_frames, total_frames)
        index[i] = floor((2 * i + 1) * total_frames / (2 * n)),  i = 0 .. n - 1

    the middle frame of each of ``n`` equal segments. This is exactly
    ``decode_video(path, fps=1.0, min_frames=num_frames, max_frames=num_frames)``: with
    ``min_frames == max_frames`` the sampling rate never binds and ``sample_frame_indices``'s
    even-count adjustment cannot move the count (``n - 1 < min_frames``, ``n + 1 > max_frames``
    or ``> total_frames``), so its step 4 gives the indices above.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
    return decode_video(path, fps=1.0, min_frames=num_frames, max_frames=num_frames)


def _decode(path: Path, num_frames: int, fps: float | None) -> DecodedVideo:
    if fps is None:
        return decode_uniform(path, num_frames)
    return decode_video(path, fps=fps, min_frames=min(4, num_frames), max_frames=num_frames)


def _messages(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]


def _model_inputs(
    processor: Any,
    prompts: Sequence[str],
    videos: Sequence[DecodedVideo],
    max_pixels: int | None,
) -> Any:
    """One processor call for a batch (the batched form of ``videoktr.data.build_prompt_inputs``):
    frames with their source timing metadata, ``do_sample_frames=False``, a one-frame clip
    doubled, and ``max_pixels`` as the per-clip pixel budget."""
    texts = [
        processor.apply_chat_template(_messages(p), tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    frames_list, metadata_list = [], []
    for video in videos:
        frames, metadata = video.frames, video.metadata()
        if frames.shape[0] == 1:
            frames = frames.repeat(2, 1, 1, 1)
            metadata["frames_indices"] = metadata["frames_indices"] * 2
        frames_list.append(frames)
        metadata_list.append(metadata)
    videos_kwargs: dict[str, Any] = {"do_sample_frames": False}
    if max_pixels is not None:
        longest = max(int(f.shape[0]) for f in frames_list)
        videos_kwargs["size"] = pixel_budget_size(processor.video_processor, max_pixels, longest)
    return processor(
        text=texts,
        videos=frames_list,
        video_metadata=metadata_list,
        videos_kwargs=videos_kwargs,
        padding=True,
        return_tensors="pt",
    )


@torch.no_grad()
def _generate(
    model: Any,
    processor: Any,
    prompts: Sequence[str],
    videos: Sequence[DecodedVideo],
    *,
    max_pixels: int | None,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    left_pad: bool,
) -> list[str]:
    from videoktr.train.rollout import generation_config

    tokenizer = processor.tokenizer
    previous_side = tokenizer.padding_side
    if left_pad:
        tokenizer.padding_side = "left"
    try:
        inputs = _model_inputs(processor, prompts, videos, max_pixels)
    finally:
        tokenizer.padding_side = previous_side
    config = generation_config(model, processor, max_new_tokens, temperature, top_p)
    device = next(model.parameters()).device
    inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    prompt_length = inputs["input_ids"].shape[1]
    sequences = model.generate(**inputs, generation_config=config)
    return processor.batch_decode(
        sequences[:, prompt_length:], skip_special_tokens=True, clean_up_tokenization_spaces=False
    )


# ------------------------------------------------------------------------------ running


def _check_settings(
    num_frames: int,
    fps: float | None,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    batch_size: int,
    limit: int | None,
    max_pixels: int | None,
) -> None:
    def positive_int(name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")

    positive_int("num_frames", num_frames)
    positive_int("max_new_tokens", max_new_tokens)
    positive_int("batch_size", batch_size)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
    if max_pixels is not None:
        positive_int("max_pixels", max_pixels)
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be None or a positive number, got {fps!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number, got {temperature!r}")
    if not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def run_evaluation(
    model: Any,
    processor: Any,
    benchmark: str,
    data_dir: str | os.PathLike,
    output_file: str | os.PathLike,
    *,
    num_frames: int = 16,
    fps: float | None = None,
    max_pixels: int | None = None,
    temperature: float = 0.1,
    top_p: float = 0.001,
    max_new_tokens: int = 1024,
    batch_size: int = 1,
    limit: int | None = None,
    parser: str = "official",
    progress: bool = True,
    retry_errors: bool = False,
) -> EvalSummary:
    """Generate an answer for every question of ``benchmark`` and score it.

    Args:
        model, processor: a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model and its processor.
        benchmark: a key of ``BENCHMARKS``.
        data_dir: the benchmark's annotation folder (layout in each benchmark module).
        output_file: the predictions JSONL; rows already there (by id) are not asked again.
        num_frames: frames per video, sampled uniformly (16, 32, 64 in the papers); with
            ``fps``, the most frames sampling at ``fps`` may give (at least 4).
        max_pixels: total pixel budget of a clip after resizing (``pixel_budget_size``);
            ``None`` keeps the processor's bounds.
        temperature, top_p, max_new_tokens: generation; ``temperature <= 0`` is greedy.
        batch_size: questions per ``generate`` call (left padding for batches).
        limit: ask only the first ``limit`` questions (file order); a later run without it
            resumes and asks the rest.
        parser: scoring rule, recorded in every row and in the summary.
        progress: show a progress bar (tqdm) when available.
        retry_errors: remove the file's error rows (unreadable videos) first and ask them again.

    Returns:
        The summary over this run's questions (rows resumed from the file included, re-scored
        from their outputs with ``parser``).
    """
    module = get_benchmark(benchmark)
    check_parser(benchmark, parser, module.PARSERS)
    _check_settings(
        num_frames, fps, temperature, top_p, max_new_tokens, batch_size, limit, max_pixels
    )
    items = module.load_items(data_dir)
    if limit is not None:
        items = items[:limit]
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)

    existing = read_predictions(output_file, repair=True)
    for number, row in enumerate(existing, start=1):
        if row.get("benchmark") != benchmark:
            raise PredictionsFileError(
                f"{output_file}: row {number} (id {row['id']!r}) is from benchmark "
                f"{row.get('benchmark')!r}, not {benchmark!r}; use another output file"
            )
    if retry_errors:
        failed = {row["id"] for row in existing if row.get("error")}
        if failed:
            _rewrite_without(output_file, failed)
            existing = [row for row in existing if row["id"] not in failed]
    done = {row["id"]: row for row in existing}
    pending = [item for item in items if item.id not in done]

    bar = _progress_bar(len(pending), f"{benchmark}", progress)
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        with output_file.open("a", encoding="utf-8") as handle:
            for start in range(0, len(pending), batch_size):
                batch = pending[start : start + batch_size]
                finished: dict[str, dict[str, Any]] = {}
                ready: list[tuple[EvalItem, DecodedVideo]] = []
                for item in batch:
                    try:
                        ready.append((item, _decode(item.video, num_frames, fps)))
                    except VideoDecodeError as exc:
                        finished[item.id] = _prediction_row(
                            benchmark, parser, item, None, None, str(exc)
                        )
                if ready:
                    outputs = _generate(
                        model,
                        processor,
                        [i.prompt for i, _ in ready],
                        [v for _, v in ready],
                        max_pixels=max_pixels,
                        temperature=temperature,
                        top_p=top_p,
                        max_new_tokens=max_new_tokens,
                        left_pad=batch_size > 1,
                    )
                    for (item, _), output in zip(ready, outputs, strict=True):
                        judgement = module.judge(item.row, output, parser)
                        finished[item.id] = _prediction_row(
                            benchmark, parser, item, output, judgement, None
                        )
                for item in batch:  # in question order
                    _write(handle, finished[item.id])
                    done[item.id] = finished[item.id]
                os.fsync(handle.fileno())
                if bar is not None:
                    bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
        if was_training:
            model.train()

    records = [
        (item.breakdown, _rescore(module, item.row, done[item.id], parser)) for item in items
    ]
    settings = {
        "num_frames": num_frames,
        "fps": fps,
        "max_pixels": max_pixels,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "limit": limit,
        "data_dir": str(data_dir),
    }
    return summarize(benchmark, records, parser, settings=settings, predictions_file=output_file)


def _write(handle: Any, row: Mapping[str, Any]) -> None:
    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    handle.flush()


def _progress_bar(total: int, description: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a convenience, never a requirement
        return None
    return tqdm(total=total, desc=description, unit="q")


def _rescore(
    module: Any, annotation: Mapping[str, Any], prediction: Mapping[str, Any], parser: str
) -> Judgement | None:
    """``None`` for an error row, else the judgement of the row's output under ``parser``."""
    if prediction.get("error"):
        return None
    output = prediction.get("output")
    return module.judge(annotation, output if isinstance(output, str) else "", parser)


def score_predictions(
    benchmark: str,
    predictions_file: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    parser: str = "official",
) -> EvalSummary:
    """Re-score a predictions file without the model.

    Each row's output is judged against its annotation row: the one loaded from ``data_dir``
    (by id; every prediction must then belong to the benchmark's current annotations) or, with
    ``data_dir=None``, the ``row`` stored in the prediction itself. Error rows stay errors (score
    0, counted). Rows of another benchmark raise ``PredictionsFileError``.
    """
    module = get_benchmark(benchmark)
    check_parser(benchmark, parser, module.PARSERS)
    path = Path(predictions_file)
    if not path.is_file():
        raise PredictionsFileError(f"{path}: no such predictions file")
    rows = read_predictions(path)
    annotations: dict[str, EvalItem] | None = None
    if data_dir is not None:
        annotations = {item.id: item for item in module.load_items(data_dir)}
    records = []
    for number, row in enumerate(rows, start=1):
        if row.get("benchmark") != benchmark:
            raise PredictionsFileError(
                f"{path}: row {number} (id {row['id']!r}) is from benchmark "
                f"{row.get('benchmark')!r}, not {benchmark!r}"
            )
        if annotations is not None:
            item = annotations.get(row["id"])
            if item is None:
                raise PredictionsFileError(
                    f"{path}: row {number}: id {row['id']!r} is not in the annotations of {data_dir}"
                )
            annotation, categories = item.row, item.breakdown
        else:
            annotation = row.get("row")
            if not isinstance(annotation, dict):
                raise PredictionsFileError(
                    f"{path}: row {number} (id {row['id']!r}) has no stored annotation 'row'; "
                    "pass data_dir"
                )
            categories = {name: str(row.get(name, "")) for name in module.BREAKDOWN_FIELDS}
        records.append((categories, _rescore(module, annotation, row, parser)))
    return summarize(benchmark, records, parser, predictions_file=path)
