"""``videoktr env``: the versions a bug report needs."""

from __future__ import annotations

import argparse
import platform

NAME = "env"
HELP = "print the versions of videoktr and its dependencies"


def configure(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(_: argparse.Namespace) -> int:
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
