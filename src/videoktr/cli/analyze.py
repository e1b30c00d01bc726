"""``videoktr analyze``: statistics of the tokens the signals selected, from rollout dumps."""

from __future__ import annotations

import argparse

from ._flags import add_flag, positive_int

NAME = "analyze"
HELP = "statistics of the tokens the signals selected, from the trainer's rollout dumps"
DESCRIPTION = (
    "Read rollout dumps (train with --rollout_dump_steps N; they are written to "
    "OUTPUT_DIR/rollouts/) and print, over all their tokens: each signal's selection and the "
    "overlaps of the selections, the words each signal selects most, the tokens no signal "
    "selected, and score summaries."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a rollout dump .jsonl, or a directory of them")
    parser.add_argument("--top", type=positive_int, default=20, metavar="N", help="words listed per table (default 20)")
    parser.add_argument("--html", metavar="FILE", help="write a heatmap of the completions' tokens to this HTML file")
    add_flag(parser, "max_completions", type=positive_int, default=200, metavar="N",
             help="completions shown in the HTML file (default 200)")
    parser.add_argument("--json", metavar="FILE", help="write every statistic to this JSON file")
    parser.add_argument("--pos", action="store_true",
                        help="part-of-speech distribution of the selected words (needs spaCy: pip install 'videoktr[pos]')")


def run(args: argparse.Namespace) -> int:
    from videoktr.analysis import (
        analyze_rollouts,
        load_pos_tagger,
        load_rollouts,
        write_rollouts_html,
    )

    # The tagger first: a missing spaCy should stop the command before any work.
    tagger = load_pos_tagger() if args.pos else None
    rollouts = load_rollouts(args.paths)
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
