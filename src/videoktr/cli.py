"""The ``videoktr`` command: parses arguments and calls the library; no logic of its own."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence


def _env(_: argparse.Namespace) -> int:
    """Print the versions a bug report needs."""
    import torch

    import videoktr

    rows = {
        "videoktr": videoktr.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda available": str(torch.cuda.is_available()),
    }
    for optional in ("transformers", "accelerate", "av"):
        try:
            module = __import__(optional)
            rows[optional] = getattr(module, "__version__", "installed")
        except ImportError:
            rows[optional] = "not installed"
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    return 0


def _tiny_model(args: argparse.Namespace) -> int:
    """Write a tiny random model + processor to a directory, for smoke tests with no download."""
    from videoktr.models.tiny import save_tiny_model

    out = save_tiny_model(args.family, args.out, seed=args.seed)
    print(f"wrote a tiny random {args.family} model and its processor to {out}")
    print("load it with: AutoModelForImageTextToText.from_pretrained(DIR), AutoProcessor.from_pretrained(DIR)")
    return 0


def _synth(args: argparse.Namespace) -> int:
    """Write the synthetic video world (clips, train/test questions with labelled traces)."""
    from videoktr.synthetic import generate_dataset

    try:
        summary = generate_dataset(
            args.out, args.n, args.seed, test_fraction=args.test_fraction, fps=args.fps
        )
    except ValueError as error:
        print(f"videoktr synth: {error}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line)
    return 0


def _train(args: argparse.Namespace) -> int:
    """Merge preset <- YAML <- flags into a VideoGRPOConfig and run the training recipe."""
    from videoktr.train.config import ConfigError, load_config
    from videoktr.train.run import train

    try:
        config = load_config(args.overrides, config_file=args.config)
        train(config)
    except ConfigError as error:
        print(f"videoktr train: {error}", file=sys.stderr)
        return 2
    return 0


def _print_train_keys() -> None:
    from videoktr.train.config import VideoGRPOConfig

    import dataclasses

    for item in dataclasses.fields(VideoGRPOConfig):
        if item.init and item.metadata.get("help") and item.name in VideoGRPOConfig.__annotations__:
            print(f"  --{item.name:<26} {item.metadata['help']}")


def _eval_judge(args: argparse.Namespace, command: str):
    """The --judge as a Judge, None without one, or False (after printing why) when it cannot load."""
    if args.judge is None:
        return None
    from videoktr.eval.judge import load_judge

    try:
        return load_judge(args.judge, retries=args.judge_retries)
    except ValueError as error:
        print(f"videoktr eval {command}: {error}", file=sys.stderr)
        return False


def _eval_run(args: argparse.Namespace) -> int:
    """Generate and score a benchmark with a local model; resumable through --output."""
    from pathlib import Path

    from videoktr.eval.runner import run_evaluation, write_summary
    from videoktr.models import ModelLoadError, load_local_model

    judge = _eval_judge(args, "run")
    if judge is False:
        return 2
    try:
        model, processor = load_local_model(args.model, bf16=args.bf16)
    except ModelLoadError as error:
        print(f"videoktr eval run: {error}", file=sys.stderr)
        return 2
    import torch

    if torch.cuda.is_available():
        model = model.to("cuda")
    summary = run_evaluation(
        model, processor, args.benchmark, args.data, args.output, num_frames=args.num_frames, fps=args.fps,
        max_pixels=args.max_pixels, temperature=args.temperature, top_p=args.top_p,
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, limit=args.limit, parser=args.parser,
        judge=judge,
    )
    print(summary.format_table())
    summary_path = Path(args.summary or Path(args.output).with_suffix(".summary.json"))
    write_summary(summary, summary_path)
    print(f"predictions: {args.output}\nsummary: {summary_path}")
    return 0


def _eval_score(args: argparse.Namespace) -> int:
    """Re-score a predictions file (e.g. with the strict parser)."""
    from pathlib import Path

    from videoktr.eval.runner import score_predictions, write_summary

    judge = _eval_judge(args, "score")
    if judge is False:
        return 2
    summary = score_predictions(args.benchmark, args.predictions, data_dir=args.data, parser=args.parser, judge=judge)
    print(summary.format_table())
    if args.summary:
        write_summary(summary, Path(args.summary))
        print(f"summary: {args.summary}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The whole method on the synthetic world, with a report."""
    from pathlib import Path

    from videoktr.demo import DemoConfig, run_demo

    config = DemoConfig(output_dir=Path(args.out), seed=args.seed)
    if args.quick:
        config = DemoConfig(output_dir=Path(args.out), seed=args.seed, num_rows=90, encoder_pretrain_steps=20, warmup_steps=40, rl_steps=8,
                            eval_limit=18, attribution_limit=12)
    run_demo(config, json_path=args.json)
    return 0


def _ablate(args: argparse.Namespace) -> int:
    """The paper's ablations on the synthetic world: arms x seeds from one warm-up checkpoint."""
    from pathlib import Path

    from videoktr.ablate import ARMS, AblationConfig, AblationError, run_ablation

    try:
        config = AblationConfig(
            output_dir=Path(args.out), seeds=tuple(args.seeds), arms=tuple(args.arms or ARMS), rl_steps=args.rl_steps,
            eval_limit=args.eval_limit, quick=args.quick,
        )
        run_ablation(config, json_path=args.json)
    except AblationError as error:
        print(f"videoktr ablate: {error}", file=sys.stderr)
        return 2
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _analyze(args: argparse.Namespace) -> int:
    """Statistics of the selected tokens in rollout dumps, as text, and optionally HTML / JSON."""
    from videoktr.analysis import (
        PosTaggerUnavailable,
        RolloutDumpError,
        analyze_rollouts,
        load_pos_tagger,
        load_rollouts,
        write_rollouts_html,
    )

    try:
        # The tagger first: a missing spaCy should stop the command before any work.
        tagger = load_pos_tagger() if args.pos else None
        rollouts = load_rollouts(args.paths)
    except (PosTaggerUnavailable, RolloutDumpError) as error:
        print(f"videoktr analyze: {error}", file=sys.stderr)
        return 2
    analysis = analyze_rollouts(rollouts, top=args.top, pos_tagger=tagger)
    print(analysis.format_text())
    written = []
    if args.html:
        written.append(f"html report: {write_rollouts_html(args.html, analysis, rollouts, args.max_completions)}")
    if args.json:
        written.append(f"json: {analysis.write_json(args.json)}")
    if written:
        print("\n" + "\n".join(written))
    return 0


def _add_judge_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--judge", metavar="MODULE:FUNCTION", default=None,
        help="an LLM judge f(messages) -> str for the official judge-based scoring of mmvu (every answer) and "
             "tempcompass (answers its rules cannot match); verdicts are stored in the predictions file. Without "
             "it those two use rule-based stand-ins; other benchmarks and --parser strict ignore it",
    )
    command.add_argument("--judge-retries", dest="judge_retries", type=int, default=2,
                         help="retries after a judge error before the question becomes an error row (default 2)")


def build_parser() -> argparse.ArgumentParser:
    from videoktr import __version__

    parser = argparse.ArgumentParser(
        prog="videoktr",
        description="Reinforcement learning of video LLMs with key-token attribution (Video-KTR).",
    )
    parser.add_argument("--version", action="version", version=f"videoktr {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    env = commands.add_parser("env", help="print the versions of videoktr and its dependencies")
    env.set_defaults(handler=_env)

    from videoktr.models import SUPPORTED_MODEL_TYPES  # light: transformers loads on use

    tiny = commands.add_parser(
        "tiny-model",
        help="write a tiny random Qwen-VL model and processor to a directory (nothing is downloaded)",
    )
    tiny.add_argument("--family", required=True, choices=SUPPORTED_MODEL_TYPES)
    tiny.add_argument("--out", required=True, help="output directory (created if missing)")
    tiny.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    tiny.set_defaults(handler=_tiny_model)

    synth = commands.add_parser(
        "synth",
        help="write the synthetic video world: clips and questions with labelled reasoning traces",
        description=(
            "Write N rows of the synthetic world SEED to DIR: videos/*.mp4, train.jsonl and "
            "test.jsonl (Video-R1 format, each trace word labelled visual, temporal or neutral) "
            "and world.json. Row i is the same for every N."
        ),
    )
    synth.add_argument("--out", required=True, help="output directory (created if missing)")
    synth.add_argument("--n", type=int, required=True, help="number of rows (videos)")
    synth.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    synth.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of rows in test.jsonl (default 0.2)"
    )
    synth.add_argument("--fps", type=float, default=4.0, help="frame rate of the clips (default 4)")
    synth.set_defaults(handler=_synth)

    train = commands.add_parser(
        "train",
        help="GRPO with key-token reinforcement on a local model and a Video-R1 format dataset",
        description=(
            "Train with GRPO and key-token reinforcement. Every configuration key (see --help-keys, and any "
            "transformers TrainingArguments key) can be set in the YAML file given by --config and overridden "
            "by a flag, e.g. --ktr_ratio 0.3. Common flags: --preset {video_ktr,grpo,t_grpo,entropy_80_20} "
            "--model PATH --dataset FILE --output_dir DIR --resume_from_checkpoint {latest,PATH}."
        ),
    )
    train.add_argument("--config", help="YAML recipe (read with yaml.safe_load)")
    train.add_argument("--help-keys", action="store_true", help="list videoktr's own configuration keys and exit")
    train.set_defaults(handler=_train)

    from videoktr.eval.benchmarks import BENCHMARKS  # light: no model code

    evaluate = commands.add_parser("eval", help="evaluate a local model on a benchmark, or re-score predictions")
    eval_commands = evaluate.add_subparsers(dest="eval_command", metavar="{run,score}", required=True)
    run = eval_commands.add_parser("run", help="generate answers and score them (resumes an existing --output)")
    run.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    run.add_argument("--data", required=True, help="the benchmark's local directory (see the docs for its layout)")
    run.add_argument("--model", required=True, help="local model directory")
    run.add_argument("--output", required=True, help="predictions JSONL; rerun with the same file to resume")
    run.add_argument("--summary", help="summary JSON (default: next to --output)")
    run.add_argument("--num-frames", dest="num_frames", type=int, default=16, help="frames per video (16/32/64)")
    run.add_argument("--fps", type=float, default=None, help="sample at this rate instead (between 4 and --num-frames)")
    run.add_argument("--max-pixels", dest="max_pixels", type=int, default=None, help="total pixel budget per video")
    run.add_argument("--temperature", type=float, default=0.1, help="0 for greedy (default 0.1, as the papers)")
    run.add_argument("--top-p", dest="top_p", type=float, default=0.001)
    run.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, default=1024)
    run.add_argument("--batch-size", dest="batch_size", type=int, default=1)
    run.add_argument("--limit", type=int, default=None, help="only the first N questions")
    run.add_argument("--parser", default="official", help="official (the benchmark's own rules) or strict")
    run.add_argument("--bf16", action="store_true", help="load the model in bfloat16")
    _add_judge_arguments(run)
    run.set_defaults(handler=_eval_run)
    score = eval_commands.add_parser("score", help="re-score a predictions JSONL")
    score.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    score.add_argument("--predictions", required=True)
    score.add_argument("--data", default=None, help="the benchmark directory (only needed for old files)")
    score.add_argument("--parser", default="official")
    score.add_argument("--summary", help="write the summary JSON here")
    _add_judge_arguments(score)
    score.set_defaults(handler=_eval_score)

    demo = commands.add_parser(
        "demo", help="synthesize a video world, warm up, train with Video-KTR, evaluate, report (CPU, minutes)"
    )
    demo.add_argument("--out", default="demo_output", help="output directory (default demo_output)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", help="also write the summary figures to this file")
    demo.add_argument("--quick", action="store_true", help="a much smaller run, under a minute (a smoke test: its figures mean nothing)")
    demo.set_defaults(handler=_demo)

    ablate = commands.add_parser(
        "ablate",
        help="the paper's ablations on the synthetic world (signals, ratio, hard vs soft), mean ± std over seeds",
        description=(
            "From one warm-up checkpoint of the demo's policy, train each arm (vanilla GRPO, E / V / T alone, "
            "V+E+T at ratios 0.1, 0.2, 0.4, V+E+T with soft sigmoid weights) with each seed, evaluate on the "
            "test split, and print a table of mean ± std accuracy per question kind; writes ablation.csv, "
            "ablation_summary.csv, ablation.png and ablation.json to --out. Rerun the same command to resume."
        ),
    )
    ablate.add_argument("--out", default="ablation_output", help="output directory (default ablation_output)")
    ablate.add_argument("--quick", action="store_true",
                        help="48 prompts of RL per run and the first 100 test questions: every arm x 3 seeds in under "
                             "30 minutes on a 2-core CPU")
    ablate.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="S", help="RL seeds (default 0 1 2)")
    ablate.add_argument("--arms", nargs="+", default=None, metavar="ARM",
                        help="arms to run (default all): grpo E V T V+E+T V+E+T:r=0.1 V+E+T:r=0.4 V+E+T:soft")
    ablate.add_argument("--rl-steps", dest="rl_steps", type=_positive_int, default=None, metavar="N",
                        help="RL steps per run (default: the demo's; --quick: 48 prompts' worth)")
    ablate.add_argument("--eval-limit", dest="eval_limit", type=_positive_int, default=None, metavar="N",
                        help="ask only the first N test questions (default: the whole test split; --quick: 100)")
    ablate.add_argument("--json", help="also write the results (ablation.json's content) to this file")
    ablate.set_defaults(handler=_ablate)

    analyze = commands.add_parser(
        "analyze",
        help="statistics of the tokens the signals selected, from the trainer's rollout dumps",
        description=(
            "Read rollout dumps (train with --rollout_dump_steps N; they are written to OUTPUT_DIR/rollouts/) "
            "and print, over all their tokens: each signal's selection and the overlaps of the selections, "
            "the words each signal selects most, the tokens no signal selected, and score summaries."
        ),
    )
    analyze.add_argument("paths", nargs="+", metavar="PATH", help="a rollout dump .jsonl, or a directory of them")
    analyze.add_argument("--top", type=_positive_int, default=20, metavar="N", help="words listed per table (default 20)")
    analyze.add_argument("--html", metavar="FILE", help="write a heatmap of the completions' tokens to this HTML file")
    analyze.add_argument("--max-completions", dest="max_completions", type=_positive_int, default=200, metavar="N",
                         help="completions shown in the HTML file (default 200)")
    analyze.add_argument("--json", metavar="FILE", help="write every statistic to this JSON file")
    analyze.add_argument("--pos", action="store_true",
                         help="part-of-speech distribution of the selected words (needs spaCy: pip install 'videoktr[pos]')")
    analyze.set_defaults(handler=_analyze)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "handler", None) is _train:
        if args.help_keys:
            _print_train_keys()
            return 0
        args.overrides = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
