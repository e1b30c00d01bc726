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

    {"id": ..., "benchmark": ..., "parser": ..., "scorer": what scored it (see below),
     "video": path, "output": generated text, "prediction": what the parser read,
     "score": float, "counted": bool, "answer": reference,
     <breakdown fields, e.g. "question_type": "SR">, "judge_reply": null or the judge's text,
     "judge_verdict": null, "correct", "incorrect" or "unparseable",
     "error": null or message, "error_source": null, "video" or "judge", "row": annotation}

LLM judges (``judge=``, see ``videoktr.eval.judge``). MMVU's and TempCompass's official scorers ask
an LLM; with a judge their ``official`` parser runs that flow and ``scorer`` reads
``"official (judge: module:function)"``, without one ``"rule-based stand-in"`` (other benchmarks:
``"official"``, or ``"<parser> parser"``; a judge given to them is ignored). Judge verdicts cost
calls and need not be reproducible, so they are stored in the rows and reused, never asked twice:
a row already scored by the same scorer and parser keeps its stored score. When a judge applies,
every row with an output that this judge has not scored yet (rows scored by rules or another
judge, and rows whose judge failed) is judged from its stored output, without the model, and
written back into the predictions file in place (atomically, every few rows, so an interruption
loses at most those few verdicts and never a row); :func:`run_evaluation` and
:func:`score_predictions` both do this. A judge that raises on every retry turns the question
into an error row (``error_source: "judge"``, score 0, counted) that keeps the model's output; the
next run or ``score`` with a judge asks the judge again, and scoring without a judge scores the
stored output by rules. Do not score a predictions file with a judge while a run is still
appending to it.
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

from .benchmarks import get_benchmark, judge_applies, scorer_name
from .common import EvalItem, Judgement, check_parser
from .judge import Judge, JudgeError, JudgeFunction, as_judge

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
        errors: error rows (score 0, counted): videos that could not be read, and questions
            whose LLM judge failed on every retry.
        accuracy: ``correct / counted`` (``None`` when nothing is counted).
        breakdown: ``{field: {value: {"count", "counted", "correct", "accuracy"}}}`` for each of
            the benchmark's breakdown fields (e.g. ``question_type``, ``duration``, ``kind``).
        scorer_note: what the benchmark's "official" parser reproduces.
        settings: generation and sampling settings of the run (empty when re-scored).
        predictions_file: where the per-question rows are.
        scorer: what produced the number: ``"official (judge: module:function)"`` (an LLM judge
            ran the official flow), ``"rule-based stand-in"`` (MMVU / TempCompass without a
            judge), ``"official"`` (the benchmark's official rules) or ``"<parser> parser"``.
        judge_errors: of ``errors``, the questions whose judge failed.
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
    scorer: str = ""
    judge_errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_table(self) -> str:
        """A plain-text table: overall accuracy, then one block per breakdown field."""

        def percent(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.1f}"

        lines = [
            f"{self.benchmark}  (parser: {self.parser}; scorer: {self.scorer or self.parser})",
            f"{'':<28}{'acc %':>8}{'n':>8}",
            f"{'overall':<28}{percent(self.accuracy):>8}{self.counted:>8}",
        ]
        for name, values in self.breakdown.items():
            lines.append(f"-- {name}")
            for value, stats in values.items():
                label = value if len(value) <= 26 else value[:25] + "~"
                lines.append(f"  {label:<26}{percent(stats['accuracy']):>8}{stats['counted']:>8}")
        notes = [f"questions {self.count}, video errors {self.errors - self.judge_errors}"]
        if self.judge_errors:
            notes.append(f"judge errors {self.judge_errors}")
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
    judge: Judge | None = None,
    judge_errors: int = 0,
) -> EvalSummary:
    """Aggregate ``(breakdown, judgement)`` pairs; ``judgement=None`` is an error row (score 0,
    counted). Accuracy is the mean score over counted questions, overall and per category.
    ``judge`` is the judge that scored the records (it names the scorer), ``judge_errors`` how
    many of the error rows are judge failures."""
    module = get_benchmark(benchmark)
    if judge is not None and not judge_applies(benchmark, parser):
        judge = None
    if judge is not None:
        note = module.JUDGED_SCORER_NOTE
    elif parser == "official":
        note = module.SCORER_NOTE
    else:
        note = f"{parser} parser"
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
        scorer_note=note,
        settings=dict(settings or {}),
        predictions_file=None if predictions_file is None else str(predictions_file),
        scorer=scorer_name(benchmark, parser, judge),
        judge_errors=judge_errors,
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


def _write_rows_atomically(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` by ``rows`` (a temporary file, fsynced, then renamed over it)."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _rewrite_without(path: Path, drop_ids: set[str]) -> None:
    """Atomically rewrite ``path`` keeping every row whose id is not in ``drop_ids``."""
    _write_rows_atomically(
        path, [row for row in read_predictions(path) if row["id"] not in drop_ids]
    )


def _replace_rows(path: Path, replacements: Mapping[str, Mapping[str, Any]]) -> None:
    """Atomically rewrite ``path`` with the rows whose id is in ``replacements`` replaced (in
    place, order kept); every other row is written back as read."""
    _write_rows_atomically(
        path, [replacements.get(row["id"], row) for row in read_predictions(path)]
    )


def _verdict_fields(judgement: Judgement | None) -> dict[str, Any]:
    return {
        "prediction": None if judgement is None else judgement.prediction,
        "score": 0.0 if judgement is None else judgement.score,
        "counted": True if judgement is None else judgement.counted,
        "judge_reply": None if judgement is None else judgement.judge_reply,
        "judge_verdict": None if judgement is None else judgement.judge_verdict,
    }


def _prediction_row(
    benchmark: str,
    parser: str,
    scorer: str,
    item: EvalItem,
    output: str | None,
    judgement: Judgement | None,
    error: str | None,
    error_source: str | None = None,
) -> dict[str, Any]:
    verdict = _verdict_fields(judgement)
    row: dict[str, Any] = {
        "id": item.id,
        "benchmark": benchmark,
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


def _rejudged_row(
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


def _is_video_error(row: Mapping[str, Any]) -> bool:
    """An error row without a model output (the video could not be read)."""
    return bool(row.get("error")) and row.get("error_source") != "judge"


def _needs_judging(row: Mapping[str, Any], parser: str, scorer: str) -> bool:
    """Whether a stored row has an output that the current judge has not scored yet."""
    if not isinstance(row.get("output"), str) or _is_video_error(row):
        return False
    if row.get("error_source") == "judge":
        return True  # the judge failed last time: ask again
    return row.get("scorer") != scorer or row.get("parser") != parser


_JUDGE_FLUSH_EVERY = 16
"""Re-judged rows are written back into the predictions file in groups of this many."""


def _judge_stored_outputs(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    annotations: Mapping[str, Mapping[str, Any]],
    module: Any,
    parser: str,
    scorer: str,
    judge: Judge,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Judge the stored outputs of ``rows`` that ``judge`` has not scored (``annotations``: id ->
    annotation row; rows without one are left alone) and write the new rows back into ``path``
    every few rows and on the way out, also when interrupted. Returns id -> new row."""
    stale = [
        row for row in rows if row["id"] in annotations and _needs_judging(row, parser, scorer)
    ]
    updated: dict[str, dict[str, Any]] = {}
    unsaved: dict[str, dict[str, Any]] = {}
    bar = _progress_bar(len(stale), "judging stored outputs", progress)
    try:
        for row in stale:
            try:
                judgement = module.judge(annotations[row["id"]], row["output"], parser, judge=judge)
                new = _rejudged_row(row, parser, scorer, judgement, None)
            except JudgeError as exc:
                new = _rejudged_row(row, parser, scorer, None, str(exc))
            updated[row["id"]] = unsaved[row["id"]] = new
            if len(unsaved) >= _JUDGE_FLUSH_EVERY:
                _replace_rows(path, unsaved)
                unsaved.clear()
            if bar is not None:
                bar.update(1)
    finally:
        if unsaved:
            _replace_rows(path, unsaved)
        if bar is not None:
            bar.close()
    return updated


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
    from videoktr.models.generation import generation_config

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
    judge: Judge | str | JudgeFunction | None = None,
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
        retry_errors: remove the file's unreadable-video error rows first and ask them again
            (rows whose judge failed keep their output; a run with a judge re-judges them).
        judge: an LLM judge for ``mmvu`` / ``tempcompass`` with ``parser="official"``
            (``f(messages) -> str``, a ``"module:function"`` spec or a
            ``videoktr.eval.judge.Judge``); ignored for other benchmarks and parsers. Stored
            outputs this judge has not scored are judged first (module docstring).

    Returns:
        The summary over this run's questions (rows resumed from the file included, re-scored
        from their outputs with ``parser``, or with their stored verdicts of this judge).
    """
    module = get_benchmark(benchmark)
    check_parser(benchmark, parser, module.PARSERS)
    _check_settings(
        num_frames, fps, temperature, top_p, max_new_tokens, batch_size, limit, max_pixels
    )
    judge = as_judge(judge)
    if not judge_applies(benchmark, parser):
        judge = None  # a documented no-op: this benchmark's official scorer asks no judge
    scorer = scorer_name(benchmark, parser, judge)
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
        failed = {row["id"] for row in existing if _is_video_error(row)}
        if failed:
            _rewrite_without(output_file, failed)
            existing = [row for row in existing if row["id"] not in failed]
    done = {row["id"]: row for row in existing}
    if judge is not None:
        done.update(
            _judge_stored_outputs(
                output_file,
                existing,
                {item.id: item.row for item in items},
                module,
                parser,
                scorer,
                judge,
                progress,
            )
        )
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
                            benchmark, parser, scorer, item, None, None, str(exc), "video"
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
                        try:
                            judgement = _score(module, item.row, output, parser, judge)
                        except JudgeError as exc:  # keep the output; a later run asks again
                            finished[item.id] = _prediction_row(
                                benchmark, parser, scorer, item, output, None, str(exc), "judge"
                            )
                            continue
                        finished[item.id] = _prediction_row(
                            benchmark, parser, scorer, item, output, judgement, None
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

    records = []
    judge_errors = 0
    for item in items:
        judgement, judge_failed = _rescore(module, item.row, done[item.id], parser, judge, scorer)
        judge_errors += judge_failed
        records.append((item.breakdown, judgement))
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
    return summarize(
        benchmark,
        records,
        parser,
        settings=settings,
        predictions_file=output_file,
        judge=judge,
        judge_errors=judge_errors,
    )


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


def _score(
    module: Any, annotation: Mapping[str, Any], output: str, parser: str, judge: Judge | None
) -> Judgement:
    """One output under ``parser``; ``judge`` only where it applies (the caller checks)."""
    if judge is None:
        return module.judge(annotation, output, parser)
    return module.judge(annotation, output, parser, judge=judge)


def _stored_judgement(prediction: Mapping[str, Any]) -> Judgement:
    return Judgement(
        score=float(prediction.get("score", 0.0)),
        prediction=prediction.get("prediction"),
        counted=bool(prediction.get("counted", True)),
        judge_reply=prediction.get("judge_reply"),
        judge_verdict=prediction.get("judge_verdict"),
    )


def _rescore(
    module: Any,
    annotation: Mapping[str, Any],
    prediction: Mapping[str, Any],
    parser: str,
    judge: Judge | None = None,
    scorer: str | None = None,
) -> tuple[Judgement | None, bool]:
    """``(judgement, judge_failed)`` of one stored row; ``judgement=None`` for an error row.

    Unreadable-video rows stay errors. With a judge (one that applies), a row this scorer already
    scored keeps its stored verdict (or stays a judge error); any other row is judged now. Without
    a judge every output is re-scored by ``parser``'s rules, a judge-error row's output included.
    """
    if _is_video_error(prediction):
        return None, False
    output = prediction.get("output")
    output = output if isinstance(output, str) else ""
    if judge is not None:
        if prediction.get("scorer") == scorer and prediction.get("parser") == parser:
            if prediction.get("error_source") == "judge":
                return None, True
            return _stored_judgement(prediction), False
        try:
            return _score(module, annotation, output, parser, judge), False
        except JudgeError:
            return None, True
    return module.judge(annotation, output, parser), False


def score_predictions(
    benchmark: str,
    predictions_file: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    parser: str = "official",
    *,
    judge: Judge | str | JudgeFunction | None = None,
    progress: bool = True,
) -> EvalSummary:
    """Re-score a predictions file without the model.

    Each row's output is judged against its annotation row: the one loaded from ``data_dir``
    (by id; every prediction must then belong to the benchmark's current annotations) or, with
    ``data_dir=None``, the ``row`` stored in the prediction itself. Unreadable-video rows stay
    errors (score 0, counted). Rows of another benchmark raise ``PredictionsFileError``.

    Without a judge the file is only read. With ``judge`` (``mmvu`` / ``tempcompass``,
    ``parser="official"``; ignored elsewhere), the outputs this judge has not scored yet are
    judged and their rows updated in the predictions file in place (atomically, a few rows at a
    time), so a second call asks the judge nothing new and an interrupted one resumes; rows
    whose judge fails on every retry become judge-error rows, asked again next time.
    """
    module = get_benchmark(benchmark)
    check_parser(benchmark, parser, module.PARSERS)
    judge = as_judge(judge)
    if not judge_applies(benchmark, parser):
        judge = None
    scorer = scorer_name(benchmark, parser, judge)
    path = Path(predictions_file)
    if not path.is_file():
        raise PredictionsFileError(f"{path}: no such predictions file")
    rows = read_predictions(path)
    annotations: dict[str, EvalItem] | None = None
    if data_dir is not None:
        annotations = {item.id: item for item in module.load_items(data_dir)}
    checked: list[tuple[dict[str, Any], Mapping[str, Any], Mapping[str, str]]] = []
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
        checked.append((row, annotation, categories))
    if judge is not None:
        updated = _judge_stored_outputs(
            path,
            rows,
            {row["id"]: annotation for row, annotation, _ in checked},
            module,
            parser,
            scorer,
            judge,
            progress,
        )
        checked = [(updated.get(row["id"], row), a, c) for row, a, c in checked]
    records = []
    judge_errors = 0
    for row, annotation, categories in checked:
        judgement, judge_failed = _rescore(module, annotation, row, parser, judge, scorer)
        judge_errors += judge_failed
        records.append((categories, judgement))
    return summarize(
        benchmark, records, parser, predictions_file=path, judge=judge, judge_errors=judge_errors
    )
