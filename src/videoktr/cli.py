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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
