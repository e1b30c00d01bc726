"""The ``videoktr`` command: one module per command, each parsing its arguments and calling the
library; no logic of its own. A command module has ``NAME``, ``HELP`` (and ``DESCRIPTION``),
``configure(parser)`` which adds its arguments, and ``run(args) -> int`` (``eval`` sets a handler
per subcommand instead).

    videoktr env | tiny-model | synth | train | eval {run,score} | demo | ablate | analyze

Multi-word flags are spelled with underscores, as transformers spells them (``--num_frames``),
and accepted with dashes too (``--num-frames``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import ablate, analyze, demo, env, evaluate, synth, tiny_model, train

COMMANDS = (env, tiny_model, synth, train, evaluate, demo, ablate, analyze)


def build_parser() -> argparse.ArgumentParser:
    from videoktr import __version__

    parser = argparse.ArgumentParser(
        prog="videoktr",
        description="Reinforcement learning of video LLMs with key-token attribution (Video-KTR).",
    )
    parser.add_argument("--version", action="version", version=f"videoktr {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command_parser = commands.add_parser(command.NAME, help=command.HELP,
                                             description=getattr(command, "DESCRIPTION", None))
        if hasattr(command, "run"):
            command_parser.set_defaults(handler=command.run)
        command.configure(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "takes_config_flags", False):  # train: the rest are VideoGRPOConfig flags
        args.config_flags = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return args.handler(args)


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
