"""``videoktr ablate``: the paper's ablations on the synthetic world (``experiments.ablate``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from videoktr import defaults

from ._flags import add_flag, add_task_flag, positive_int

NAME = "ablate"
HELP = "the paper's ablations on the synthetic world (signals, ratio, hard vs soft), mean ± std over seeds"
DESCRIPTION = (
    "From one warm-up checkpoint of the demo's policy, train each arm (vanilla GRPO, E / V / T "
    "alone, V+E+T at ratios 0.1, 0.2, 0.4, V+E+T with soft sigmoid weights) with each seed, "
    "evaluate on the test split, and print a table of mean ± std accuracy per question kind; "
    "writes ablation.csv, ablation_summary.csv, ablation.png and ablation.json to --out. Rerun "
    "the same command to resume."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=defaults.ABLATION_OUTPUT_DIR,
                        help=f"output directory (default {defaults.ABLATION_OUTPUT_DIR})")
    parser.add_argument("--quick", action="store_true",
                        help="48 prompts of RL per run and the first 100 test questions: every arm x 3 seeds in under "
                             "30 minutes on a 2-core CPU")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(defaults.ABLATION_SEEDS), metavar="S",
                        help=f"RL seeds (default {' '.join(map(str, defaults.ABLATION_SEEDS))})")
    parser.add_argument("--arms", nargs="+", default=None, metavar="ARM",
                        help="arms to run (default the paper's: grpo E V T V+E+T V+E+T:r=0.1 V+E+T:r=0.4 V+E+T:soft; "
                             "also V+E+T:mass and E:mass, the adaptive ratio)")
    add_flag(parser, "rl_steps", type=positive_int, default=None, metavar="N",
             help="RL steps per run (default: the demo's; --quick: 48 prompts' worth)")
    add_flag(parser, "eval_limit", type=positive_int, default=None, metavar="N",
             help="ask only the first N test questions (default: the whole test split; --quick: 100)")
    add_flag(parser, "learning_rates", type=float, nargs="+", default=None, metavar="LR",
             help="an RL learning-rate grid: every arm runs each rate, and the table reports each arm at its best "
                  "(default: the demo's rate only)")
    add_task_flag(parser, "filler")
    parser.add_argument("--json", help="also write the results (ablation.json's content) to this file")


def run(args: argparse.Namespace) -> int:
    from videoktr.experiments.ablate import PAPER_ARMS, AblationConfig, run_ablation
    from videoktr.experiments.policy import DemoConfig

    config = AblationConfig(
        output_dir=Path(args.out), seeds=tuple(args.seeds), arms=tuple(args.arms or PAPER_ARMS), rl_steps=args.rl_steps,
        eval_limit=args.eval_limit, quick=args.quick, learning_rates=tuple(args.learning_rates or ()),
        demo=DemoConfig(task=args.task),
    )
    run_ablation(config, json_path=args.json)
    return 0
