"""The ``videoktr`` command: one module per command, each parsing its arguments and calling the
library; no logic of its own. A command module has ``NAME``, ``HELP`` (and ``DESCRIPTION``),
``configure(parser)`` which adds its arguments, and ``run(args) -> int`` (``eval`` sets a handler
per subcommand instead); ``OWN_HELP = True`` when ``configure`` adds its own ``-h``.

    videoktr env | tiny-model | synth | train | rollout-server | eval {run,score} | demo | ablate | analyze

Multi-word flags are spelled with underscores, as transformers spells them (``--num_frames``),
and accepted with dashes too (``--num-frames``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import ablate, analyze, demo, env, evaluate, rollout_server, synth, tiny_model, train

COMMANDS = (env, tiny_model, synth, train, rollout_server, evaluate, demo, ablate, analyze)


def build_parser() -> argparse.ArgumentParser:
    from videoktr import __version__

    parser = argparse.ArgumentParser(
        prog="videoktr",
        description="Reinforcement learning of video LLMs with key-token attribution (Video-KTR).",
    )
    parser.add_argument("--version", action="version", version=f"videoktr {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (also: VIDEOKTR_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command_parser = commands.add_parser(command.NAME, help=command.HELP,
                                             description=getattr(command, "DESCRIPTION", None),
                                             add_help=not getattr(command, "OWN_HELP", False))
        if hasattr(command, "run"):
            command_parser.set_defaults(handler=command.run)
        command.configure(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "takes_config_flags", False):  # train: VideoGRPOConfig flags; rollout-server: the server's
        args.config_flags = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    command = " ".join(part for part in (args.command, getattr(args, "eval_command", None)) if part)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"videoktr {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # The library reports bad input (a file, a row, a key, a path) as ValueError or OSError,
        # a missing optional tool or a stopped run as the errors below: one line. Anything else
        # is a bug: the traceback.
        from videoktr.analysis.pos import PosTaggerUnavailable
        from videoktr.eval.judge import JudgeError
        from videoktr.train.run import TrainingInterrupted

        expected = isinstance(error, (ValueError, OSError, TrainingInterrupted, PosTaggerUnavailable, JudgeError))
        if not expected or args.debug or os.environ.get("VIDEOKTR_DEBUG"):
            raise
        print(f"videoktr {command}: {error}", file=sys.stderr)
        return 130 if isinstance(error, TrainingInterrupted) else 2


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
