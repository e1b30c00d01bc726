"""Evaluation on the Video-KTR paper's benchmarks, scored the way their authors score them.

* ``BENCHMARKS``: name -> module, one per benchmark (``video_holmes``, ``videommmu``, ``mmvu``,
  ``tempcompass``, ``videomme``, ``synthetic``), each implementing the ``Benchmark`` protocol
  (``eval.benchmarks``). Each module documents the official annotation layout it reads, the
  prompt it builds and, rule by rule, the official scoring it reproduces (with the source
  repository and file), plus a ``strict`` parser where the official rule misjudges answers.
* ``score_output(benchmark, row, output, parser, judge=None)``: one output against one
  annotation row.
* ``videoktr.eval.judge``: pluggable LLM judges (``judge(messages) -> str``, loaded from
  ``"module:function"``) that run MMVU's and TempCompass's official judge-based scoring; without
  one those two are scored by rule-based stand-ins, and every summary's ``scorer`` says which.
* ``run_evaluation(model, processor, benchmark, data_dir, output_file, ...)``: batched
  generation on uniformly sampled frames, predictions streamed to JSONL, resumable
  (``eval.runner``, over ``eval.generation``, ``eval.predictions`` and ``eval.judging``).
* ``score_predictions(benchmark, predictions_file, ...)``: re-score without the model.
* ``EvalSummary`` (``to_dict``, ``format_table``) and ``write_summary`` (``eval.summary``).

How the Video-KTR paper produced its numbers (zywang0104/Video-KTR ``src/eval_bench.py``):
VideoMMMU, MMVU, TempCompass and VideoMME were run from Video-R1-format conversions of the
benchmarks with a think/answer prompt and scored by exact match of the first answer block;
that rule is ``parser="video_r1"`` of the ``synthetic`` module, which reads such files. The
per-benchmark modules reproduce the benchmarks' own official protocols instead.
"""

from ..data.video import decode_uniform
from .benchmarks import BENCHMARKS, Benchmark, get_benchmark, judge_output, score_output
from .common import AnnotationError, EvalItem, Judgement, strict_choice
from .generation import EvalSettings
from .judge import Judge, JudgeError, load_judge, local_hf_judge
from .predictions import PredictionsFileError, read_predictions, run_record_path
from .runner import run_evaluation, score_predictions
from .summary import EvalSummary, summarize, write_summary

__all__ = [
    "BENCHMARKS",
    "AnnotationError",
    "Benchmark",
    "EvalItem",
    "EvalSettings",
    "EvalSummary",
    "Judge",
    "JudgeError",
    "Judgement",
    "PredictionsFileError",
    "decode_uniform",
    "get_benchmark",
    "judge_output",
    "load_judge",
    "local_hf_judge",
    "read_predictions",
    "run_evaluation",
    "run_record_path",
    "score_output",
    "score_predictions",
    "strict_choice",
    "summarize",
    "write_summary",
]
