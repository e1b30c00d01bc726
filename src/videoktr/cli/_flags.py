"""What the command modules share: one spelling of flags, and argument types.

Flags are spelled as transformers spells them, with underscores (``--num_frames``), and every
multi-word flag is also accepted with dashes (``--num-frames``), as ``HfArgumentParser`` accepts
both for ``videoktr train``'s keys.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_flag", "add_task_flag", "positive_int"]


def add_flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> argparse.Action:
    """``--name`` and, when ``name`` has an underscore, the same flag with dashes."""
    names = [f"--{name}", *([f"--{name.replace('_', '-')}"] if "_" in name else [])]
    return parser.add_argument(*names, dest=name, **kwargs)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_task_flag(parser: argparse.ArgumentParser, default: str) -> argparse.Action:
    """``--task``: which synthetic world (``videoktr.synthetic.TASKS``)."""
    from videoktr.synthetic import TASKS

    return parser.add_argument("--task", default=default, choices=list(TASKS),
                               help=f"which synthetic world (default {default}): filler (colour questions whose "
                                    "traces open with filler words; the demo's), its controls filler_templated and "
                                    "filler_own, or standard (eight question families). docs/selection.md")
