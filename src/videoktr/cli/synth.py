"""``videoktr synth``: write the synthetic video world."""

from __future__ import annotations

import argparse

from videoktr import defaults

from ._flags import add_flag, add_task_flag

NAME = "synth"
HELP = "write the synthetic video world: clips and questions with labelled reasoning traces"
DESCRIPTION = (
    "Write N rows of the synthetic world SEED to DIR: videos/*.mp4, train.jsonl and test.jsonl "
    "(Video-R1 format, each trace word labelled visual, temporal or neutral) and world.json. Row "
    "i is the same for every N."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--n", type=int, required=True, help="number of rows (videos)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    add_flag(parser, "test_fraction", type=float, default=defaults.WORLD_TEST_FRACTION,
             help=f"share of rows in test.jsonl (default {defaults.WORLD_TEST_FRACTION})")
    parser.add_argument("--fps", type=float, default=defaults.WORLD_FPS,
                        help=f"frame rate of the clips (default {defaults.WORLD_FPS:g})")
    add_task_flag(parser, "standard")


def run(args: argparse.Namespace) -> int:
    from videoktr.synthetic import generate_dataset

    summary = generate_dataset(args.out, args.n, args.seed, test_fraction=args.test_fraction, fps=args.fps,
                               task=args.task)
    for line in summary.lines():
        print(line)
    return 0
