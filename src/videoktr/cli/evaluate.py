"""``videoktr eval run`` and ``videoktr eval score``: a benchmark with a local model, resumable,
or a predictions file re-scored; both print the benchmark's table and write a JSON summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from videoktr import defaults

from ._flags import add_flag, positive_int

NAME = "eval"
HELP = "evaluate a local model on a benchmark, or re-score predictions"


def _add_judge_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--judge", metavar="MODULE:FUNCTION", default=None,
        help="an LLM judge f(messages) -> str for the official judge-based scoring of mmvu (every answer) and "
             "tempcompass (answers its rules cannot match); verdicts are stored in the predictions file. Without "
             "it those two use rule-based stand-ins; other benchmarks and --parser strict ignore it",
    )
    from videoktr.eval.judge import DEFAULT_RETRIES

    add_flag(parser, "judge_retries", type=int, default=DEFAULT_RETRIES,
             help=f"retries after a judge error before the question becomes an error row (default {DEFAULT_RETRIES})")


def configure(parser: argparse.ArgumentParser) -> None:
    from videoktr.eval.benchmarks import BENCHMARKS  # light: no model code

    subcommands = parser.add_subparsers(dest="eval_command", metavar="{run,score}", required=True)
    run_parser = subcommands.add_parser("run", help="generate answers and score them (resumes an existing --output)")
    run_parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    run_parser.add_argument("--data", required=True, help="the benchmark's local directory (see the docs for its layout)")
    run_parser.add_argument("--model", required=True, help="local model directory")
    run_parser.add_argument("--output", required=True, help="predictions JSONL; rerun with the same file to resume")
    run_parser.add_argument("--summary", help="summary JSON (default: next to --output)")
    add_flag(run_parser, "num_frames", type=positive_int, default=defaults.EVAL_NUM_FRAMES,
             help=f"frames per video (16/32/64; default {defaults.EVAL_NUM_FRAMES})")
    run_parser.add_argument("--fps", type=float, default=None, help="sample at this rate instead (between 4 and --num_frames)")
    add_flag(run_parser, "max_pixels", type=positive_int, default=None,
             help="total pixels of a clip after resizing, all frames together (default: no total cap)")
    add_flag(run_parser, "video_min_pixels", type=positive_int, default=defaults.VIDEO_FRAME_PIXELS,
             help=f"pixels of one frame, at least (default {defaults.VIDEO_FRAME_PIXELS} = 128x28x28, the official "
                  "Video-KTR evaluation's budget; small videos are scaled up)")
    add_flag(run_parser, "video_max_pixels", type=positive_int, default=defaults.VIDEO_FRAME_PIXELS,
             help=f"pixels of one frame, at most (default {defaults.VIDEO_FRAME_PIXELS})")
    run_parser.add_argument("--temperature", type=float, default=defaults.EVAL_TEMPERATURE,
                            help=f"0 for greedy (default {defaults.EVAL_TEMPERATURE}, as the papers); not negative")
    add_flag(run_parser, "top_p", type=float, default=defaults.EVAL_TOP_P)
    add_flag(run_parser, "max_new_tokens", type=positive_int, default=defaults.EVAL_MAX_NEW_TOKENS)
    add_flag(run_parser, "batch_size", type=positive_int, default=1)
    run_parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    run_parser.add_argument("--parser", default="official", help="official (the benchmark's own rules) or strict")
    run_parser.add_argument("--bf16", action="store_true", help="load the model in bfloat16")
    run_parser.add_argument("--backend", choices=("hf", "vllm"), default="hf",
                            help="who generates: the model loaded here (hf) or a vLLM rollout server serving it "
                                 "(vllm: start `videoktr rollout-server --model MODEL` first)")
    add_flag(run_parser, "vllm_server_host", default="127.0.0.1", help="the rollout server's host (--backend vllm)")
    add_flag(run_parser, "vllm_server_port", type=int, default=8765, help="the rollout server's port (--backend vllm)")
    run_parser.add_argument("--overwrite", action="store_true",
                            help="remove the predictions already in --output and start over (a resume must otherwise "
                                 "use the same model and settings; --batch_size and --limit may change)")
    _add_judge_flags(run_parser)
    run_parser.set_defaults(handler=run_benchmark)
    score_parser = subcommands.add_parser("score", help="re-score a predictions JSONL")
    score_parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    score_parser.add_argument("--predictions", required=True)
    score_parser.add_argument("--data", default=None, help="the benchmark directory (only needed for old files)")
    score_parser.add_argument("--parser", default="official")
    score_parser.add_argument("--summary", help="write the summary JSON here")
    _add_judge_flags(score_parser)
    score_parser.set_defaults(handler=score_file)


def _judge(args: argparse.Namespace):
    """The --judge as a Judge, or None without one; raises ValueError when it cannot load."""
    if args.judge is None:
        return None
    from videoktr.eval.judge import load_judge

    return load_judge(args.judge, retries=args.judge_retries)


def run_benchmark(args: argparse.Namespace) -> int:
    """Generate and score a benchmark with a local model; resumable through --output."""
    import torch

    from videoktr.eval import EvalSettings, get_benchmark, run_evaluation, write_summary
    from videoktr.eval.common import check_parser
    from videoktr.eval.predictions import check_run_record
    from videoktr.eval.runner import run_record
    from videoktr.models import load_local_model

    # Everything that can be wrong with the arguments, the data or the output, before the model loads.
    judge = _judge(args)
    settings = EvalSettings(args.num_frames, args.fps, args.max_pixels, args.temperature, args.top_p,
                            args.max_new_tokens, args.batch_size, args.limit, args.video_min_pixels,
                            args.video_max_pixels)
    benchmark = get_benchmark(args.benchmark)
    check_parser(args.benchmark, args.parser, benchmark.PARSERS)
    benchmark.load_items(args.data)
    try:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"--output {args.output}: its folder cannot be created ({error.strerror or error})") from None
    model_name = str(Path(args.model).resolve())
    if not args.overwrite:
        check_run_record(args.output, run_record(args.benchmark, model_name, settings))
    if args.backend == "vllm":  # the server holds the model: only its processor and end tokens here
        from types import SimpleNamespace

        from transformers import AutoProcessor, GenerationConfig

        from videoktr.rollout import VLLMRolloutBackend

        processor = AutoProcessor.from_pretrained(args.model)
        # The model's end tokens as the hf backend reads them (its generation config), without loading it.
        served = SimpleNamespace(generation_config=GenerationConfig.from_pretrained(args.model))
        model = VLLMRolloutBackend.for_model(served, processor, host=args.vllm_server_host, port=args.vllm_server_port)
    else:
        model, processor = load_local_model(args.model, bf16=args.bf16)
        if torch.cuda.is_available():
            model = model.to("cuda")
    summary = run_evaluation(
        model, processor, args.benchmark, args.data, args.output, num_frames=args.num_frames, fps=args.fps,
        max_pixels=args.max_pixels, video_min_pixels=args.video_min_pixels,
        video_max_pixels=args.video_max_pixels, temperature=args.temperature, top_p=args.top_p,
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, limit=args.limit, parser=args.parser,
        judge=judge, model_name=model_name, overwrite=args.overwrite,
    )
    print(summary.format_table())
    summary_path = Path(args.summary or Path(args.output).with_suffix(".summary.json"))
    write_summary(summary, summary_path)
    print(f"predictions: {args.output}\nsummary: {summary_path}")
    return 0


def score_file(args: argparse.Namespace) -> int:
    """Re-score a predictions file (e.g. with the strict parser, or a judge)."""
    from videoktr.eval import score_predictions, write_summary

    judge = _judge(args)
    summary = score_predictions(args.benchmark, args.predictions, data_dir=args.data, parser=args.parser, judge=judge)
    print(summary.format_table())
    if args.summary:
        write_summary(summary, Path(args.summary))
        print(f"summary: {args.summary}")
    return 0
