"""Run a model on a benchmark, stream predictions to JSONL, resume; re-score without the model.

Why this shape: benchmark runs are long (Video-Holmes is 1,837 questions on 1-5 minute films),
so every finished question is written to the predictions file at once (``eval.predictions``)
and a rerun with the same file skips the questions already there (by id): a killed run loses at
most the batch in flight. A missing or undecodable video is a fact about the data, not a crash:
it becomes an error row (score 0, counted, ``error`` naming the file) and the run goes on.
Scoring is pure and separate from generation, so :func:`score_predictions` re-scores a
predictions file (with either parser, or an LLM judge: ``eval.judging``) without the model.

The jobs, one module each: ``eval.generation`` (settings, frames, the batched call),
``eval.predictions`` (the file), ``eval.judging`` (scoring stored outputs, judges' verdicts
kept), ``eval.summary`` (accuracy and its breakdown); this module runs them in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from .. import defaults
from ..data.video import DecodedVideo, VideoDecodeError
from .benchmarks import Benchmark, get_benchmark, judge_applies, scorer_name
from .common import EvalItem, check_parser
from .generation import EvalSettings, answer_batch, decode_clip
from .judge import Judge, JudgeError, JudgeFunction, as_judge
from .judging import judge_stored_outputs, progress_bar, rescore, score_output_with
from .predictions import (
    RESUMABLE_SETTINGS,
    PredictionsFileError,
    append_row,
    check_run_record,
    is_video_error,
    prediction_row,
    read_predictions,
    rewrite_without,
)
from .summary import EvalSummary, summarize

__all__ = ["run_evaluation", "run_record", "score_predictions"]


def _resolve_judge(benchmark: str, parser: str, judge: Judge | str | JudgeFunction | None) -> Judge | None:
    """The judge as a ``Judge``, or None where it does not apply (a documented no-op)."""
    judge = as_judge(judge)
    return judge if judge_applies(benchmark, parser) else None


def _model_name(model: Any) -> str | None:
    """The path a model was loaded from (transformers keeps it in its config), if any."""
    name = getattr(getattr(model, "config", None), "_name_or_path", None) or getattr(model, "name_or_path", None)
    return str(name) if name else None


def run_record(benchmark: str, model_name: str | None, settings: EvalSettings) -> dict[str, Any]:
    """What the answers in a predictions file depend on, kept beside it so that a resume with
    another model or other settings is refused (``eval.predictions.check_run_record``)."""
    answer_settings = {k: v for k, v in settings.to_dict().items() if k not in RESUMABLE_SETTINGS}
    return {"benchmark": benchmark, "model": model_name, "settings": answer_settings}


def _resume(output_file: Path, benchmark: str, retry_errors: bool) -> list[dict[str, Any]]:
    """The rows already in the predictions file (a cut-off last line repaired); with
    ``retry_errors`` the unreadable-video rows are removed, to be asked again."""
    existing = read_predictions(output_file, repair=True)
    for number, row in enumerate(existing, start=1):
        if row.get("benchmark") != benchmark:
            raise PredictionsFileError(
                f"{output_file}: row {number} (id {row['id']!r}) is from benchmark "
                f"{row.get('benchmark')!r}, not {benchmark!r}; use another output file"
            )
    if retry_errors:
        failed = {row["id"] for row in existing if is_video_error(row)}
        if failed:
            rewrite_without(output_file, failed)
            existing = [row for row in existing if row["id"] not in failed]
    return existing


def _ask(model: Any, processor: Any, module: Benchmark, batch: Sequence[EvalItem], settings: EvalSettings,
         parser: str, judge: Judge | None, make_row: Callable[..., dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The prediction rows of one batch of questions: answered and scored, or error rows
    (``make_row(item, output, judgement, error, error_source)``)."""
    finished: dict[str, dict[str, Any]] = {}
    ready: list[tuple[EvalItem, DecodedVideo]] = []
    for item in batch:
        try:
            ready.append((item, decode_clip(item.video, settings)))
        except VideoDecodeError as exc:
            finished[item.id] = make_row(item, None, None, str(exc), "video")
    if ready:
        outputs = answer_batch(model, processor, [i.prompt for i, _ in ready], [v for _, v in ready], settings=settings)
        for (item, _), output in zip(ready, outputs, strict=True):
            try:
                judgement = score_output_with(module, item.row, output, parser, judge)
            except JudgeError as exc:  # keep the output; a later run asks again
                finished[item.id] = make_row(item, output, None, str(exc), "judge")
                continue
            finished[item.id] = make_row(item, output, judgement, None)
    return finished


def _ask_pending(model: Any, processor: Any, module: Benchmark, pending: Sequence[EvalItem], output_file: Path,
                 settings: EvalSettings, parser: str, judge: Judge | None,
                 make_row: Callable[..., dict[str, Any]], progress: bool) -> dict[str, dict[str, Any]]:
    """Ask every pending question in batches, appending each batch's rows in question order."""
    done: dict[str, dict[str, Any]] = {}
    bar = progress_bar(len(pending), module.NAME, progress)
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        with output_file.open("a", encoding="utf-8") as handle:
            for start in range(0, len(pending), settings.batch_size):
                batch = pending[start : start + settings.batch_size]
                finished = _ask(model, processor, module, batch, settings, parser, judge, make_row)
                for item in batch:  # in question order
                    append_row(handle, finished[item.id])
                    done[item.id] = finished[item.id]
                os.fsync(handle.fileno())
                if bar is not None:
                    bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
        if was_training:
            model.train()
    return done


def run_evaluation(
    model: Any,
    processor: Any,
    benchmark: str,
    data_dir: str | os.PathLike,
    output_file: str | os.PathLike,
    *,
    num_frames: int = defaults.EVAL_NUM_FRAMES,
    fps: float | None = None,
    max_pixels: int | None = None,
    video_min_pixels: int | None = defaults.VIDEO_FRAME_PIXELS,
    video_max_pixels: int | None = defaults.VIDEO_FRAME_PIXELS,
    temperature: float = defaults.EVAL_TEMPERATURE,
    top_p: float = defaults.EVAL_TOP_P,
    max_new_tokens: int = defaults.EVAL_MAX_NEW_TOKENS,
    batch_size: int = 1,
    limit: int | None = None,
    parser: str = "official",
    progress: bool = True,
    retry_errors: bool = False,
    judge: Judge | str | JudgeFunction | None = None,
    model_name: str | None = None,
    overwrite: bool = False,
) -> EvalSummary:
    """Generate an answer for every question of ``benchmark`` and score it.

    Args:
        model, processor: a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model and its processor; or, for
            ``model``, a ``rollout.VLLMRolloutBackend`` whose server serves that model.
        benchmark: a key of ``BENCHMARKS``.
        data_dir: the benchmark's annotation folder (layout in each benchmark module).
        output_file: the predictions JSONL; rows already there (by id) are not asked again.
        num_frames, fps, max_pixels, video_min_pixels, video_max_pixels, temperature, top_p,
        max_new_tokens, batch_size, limit:
            how questions are asked (``eval.generation.EvalSettings``); ``limit`` asks only the
            first N questions (file order), and a later run without it resumes and asks the rest.
        parser: scoring rule, recorded in every row and in the summary.
        progress: show a progress bar (tqdm) when available.
        retry_errors: remove the file's unreadable-video error rows first and ask them again
            (rows whose judge failed keep their output; a run with a judge re-judges them).
        judge: an LLM judge for ``mmvu`` / ``tempcompass`` with ``parser="official"``
            (``f(messages) -> str``, a ``"module:function"`` spec or a
            ``videoktr.eval.judge.Judge``); ignored for other benchmarks and parsers. Stored
            outputs this judge has not scored are judged first (``eval.judging``).
        model_name: what the rows and the run record name the model by (default: the path it
            was loaded from). A resume with another model, or other settings than
            ``batch_size`` and ``limit``, raises ``PredictionsFileError``.
        overwrite: remove the predictions already in ``output_file`` and start over.

    Returns:
        The summary over this run's questions (rows resumed from the file included, re-scored
        from their outputs with ``parser``, or with their stored verdicts of this judge).
    """
    module = get_benchmark(benchmark)
    check_parser(benchmark, parser, module.PARSERS)
    settings = EvalSettings(num_frames, fps, max_pixels, temperature, top_p, max_new_tokens, batch_size, limit,
                            video_min_pixels, video_max_pixels)
    judge = _resolve_judge(benchmark, parser, judge)
    scorer = scorer_name(benchmark, parser, judge)
    items = module.load_items(data_dir)
    if limit is not None:
        items = items[:limit]
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    model_name = model_name if model_name is not None else _model_name(model)
    check_run_record(output_file, run_record(benchmark, model_name, settings), overwrite=overwrite)
    existing = _resume(output_file, benchmark, retry_errors)
    done = {row["id"]: row for row in existing}
    if judge is not None:
        annotations = {item.id: item.row for item in items}
        done.update(judge_stored_outputs(output_file, existing, annotations, module, parser, scorer, judge, progress))
    pending = [item for item in items if item.id not in done]
    make_row = partial(prediction_row, module.NAME, parser, scorer, model=model_name)
    done.update(_ask_pending(model, processor, module, pending, output_file, settings, parser, judge, make_row, progress))
    records, judge_errors = [], 0
    for item in items:
        judgement, judge_failed = rescore(module, item.row, done[item.id], parser, judge, scorer)
        judge_errors += judge_failed
        records.append((item.breakdown, judgement))
    return summarize(benchmark, records, parser,
                     settings={**settings.to_dict(), "data_dir": str(data_dir), "model": model_name},
                     predictions_file=output_file, judge=judge, judge_errors=judge_errors)


def _stored_annotations(module: Benchmark, path: Path, rows: Sequence[Mapping[str, Any]],
                        data_dir: str | os.PathLike | None) -> list[tuple[Mapping[str, Any], Mapping[str, str]]]:
    """Each stored row's annotation and breakdown: from ``data_dir``'s annotations (by id) or,
    without it, the ``row`` the prediction stores."""
    annotations = {item.id: item for item in module.load_items(data_dir)} if data_dir is not None else None
    found = []
    for number, row in enumerate(rows, start=1):
        if row.get("benchmark") != module.NAME:
            raise PredictionsFileError(
                f"{path}: row {number} (id {row['id']!r}) is from benchmark "
                f"{row.get('benchmark')!r}, not {module.NAME!r}"
            )
        if annotations is not None:
            item = annotations.get(row["id"])
            if item is None:
                raise PredictionsFileError(
                    f"{path}: row {number}: id {row['id']!r} is not in the annotations of {data_dir}"
                )
            found.append((item.row, item.breakdown))
            continue
        annotation = row.get("row")
        if not isinstance(annotation, dict):
            raise PredictionsFileError(
                f"{path}: row {number} (id {row['id']!r}) has no stored annotation 'row'; pass data_dir"
            )
        found.append((annotation, {name: str(row.get(name, "")) for name in module.BREAKDOWN_FIELDS}))
    return found


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
    judge = _resolve_judge(benchmark, parser, judge)
    scorer = scorer_name(benchmark, parser, judge)
    path = Path(predictions_file)
    if not path.is_file():
        raise PredictionsFileError(f"{path}: no such predictions file")
    rows = read_predictions(path)
    annotations = _stored_annotations(module, path, rows, data_dir)
    if judge is not None:
        by_id = {row["id"]: annotation for row, (annotation, _) in zip(rows, annotations, strict=True)}
        updated = judge_stored_outputs(path, rows, by_id, module, parser, scorer, judge, progress)
        rows = [updated.get(row["id"], row) for row in rows]
    records, judge_errors = [], 0
    for row, (annotation, categories) in zip(rows, annotations, strict=True):
        judgement, judge_failed = rescore(module, annotation, row, parser, judge, scorer)
        judge_errors += judge_failed
        records.append((categories, judgement))
    return summarize(benchmark, records, parser, predictions_file=path, judge=judge, judge_errors=judge_errors)
