"""``videoktr tiny-model``: a tiny random model and its processor on disk, nothing downloaded."""

from __future__ import annotations

import argparse

from ._flags import add_flag

NAME = "tiny-model"
HELP = "write a tiny random Qwen-VL model and processor to a directory (nothing is downloaded)"


def configure(parser: argparse.ArgumentParser) -> None:
    from videoktr.models import SUPPORTED_MODEL_TYPES  # light: transformers loads on use

    parser.add_argument("--family", required=True, choices=SUPPORTED_MODEL_TYPES)
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    add_flag(parser, "hidden_size", type=int, default=64,
             help="text hidden size (default 64; 128 gives head size 32, the least vLLM's CPU attention takes)")
    add_flag(parser, "num_heads", type=int, default=4, help="attention heads (default 4)")


def run(args: argparse.Namespace) -> int:
    from videoktr.models.tiny import save_tiny_model

    out = save_tiny_model(args.family, args.out, seed=args.seed, hidden_size=args.hidden_size,
                          num_heads=args.num_heads, num_kv_heads=max(1, args.num_heads // 2))
    print(f"wrote a tiny random {args.family} model and its processor to {out}")
    print("load it with: AutoModelForImageTextToText.from_pretrained(DIR), AutoProcessor.from_pretrained(DIR)")
    return 0
