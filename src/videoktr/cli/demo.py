"""``videoktr demo``: the whole method on the synthetic world (``experiments.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from videoktr import defaults

from ._flags import add_task_flag

NAME = "demo"
HELP = "synthesize a video world, warm up, train with Video-KTR, evaluate, report (CPU, minutes)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=defaults.DEMO_OUTPUT_DIR,
                        help=f"output directory (default {defaults.DEMO_OUTPUT_DIR})")
    parser.add_argument("--seed", type=int, default=0)
    add_task_flag(parser, "filler")
    parser.add_argument("--json", help="also write the summary figures to this file")
    parser.add_argument("--quick", action="store_true",
                        help="a much smaller run, under a minute (a smoke test: its figures mean nothing)")


def run(args: argparse.Namespace) -> int:
    from videoktr.experiments.demo import run_demo
    from videoktr.experiments.policy import DemoConfig

    make = DemoConfig.quick if args.quick else DemoConfig
    run_demo(make(output_dir=Path(args.out), seed=args.seed, task=args.task), json_path=args.json)
    return 0
