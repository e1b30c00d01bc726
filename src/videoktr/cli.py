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


def _synth(args: argparse.Namespace) -> int:
    """Write the synthetic video world (clips, train/test questions with labelled traces)."""
    from videoktr.synthetic import generate_dataset

    try:
        summary = generate_dataset(
            args.out, args.n, args.seed, test_fraction=args.test_fraction, fps=args.fps
        )
    except ValueError as error:
        print(f"videoktr synth: {error}", file=sys.stderr)
        return 2
    for line in summary.lines():
        print(line)
    return 0


def _train(args: argparse.Namespace) -> int:
    """Merge preset <- YAML <- flags into a VideoGRPOConfig and run the training recipe."""
    from videoktr.train.config import ConfigError, load_config
    from videoktr.train.run import train

    try:
        config = load_config(args.overrides, config_file=args.config)
        train(config)
    except ConfigError as error:
        print(f"videoktr train: {error}", file=sys.stderr)
        return 2
    return 0


def _print_train_keys() -> None:
    from videoktr.train.config import VideoGRPOConfig

    import dataclasses

    for item in dataclasses.fields(VideoGRPOConfig):
        if item.init and item.metadata.get("help") and item.name in VideoGRPOConfig.__annotations__:
            print(f"  --{item.name:<26} {item.metadata['help']}")


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

    synth = commands.add_parser(
        "synth",
        help="write the synthetic video world: clips and questions with labelled reasoning traces",
        description=(
            "Write N rows of the synthetic world SEED to DIR: videos/*.mp4, train.jsonl and "
            "test.jsonl (Video-R1 format, each trace word labelled visual, temporal or neutral) "
            "and world.json. Row i is the same for every N."
        ),
    )
    synth.add_argument("--out", required=True, help="output directory (created if missing)")
    synth.add_argument("--n", type=int, required=True, help="number of rows (videos)")
    synth.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    synth.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of rows in test.jsonl (default 0.2)"
    )
    synth.add_argument("--fps", type=float, default=4.0, help="frame rate of the clips (default 4)")
    synth.set_defaults(handler=_synth)

    train = commands.add_parser(
        "train",
        help="GRPO with key-token reinforcement on a local model and a Video-R1 format dataset",
        description=(
            "Train with GRPO and key-token reinforcement. Every configuration key (see --help-keys, and any "
            "transformers TrainingArguments key) can be set in the YAML file given by --config and overridden "
            "by a flag, e.g. --ktr_ratio 0.3. Common flags: --preset {video_ktr,grpo,t_grpo,entropy_80_20} "
            "--model PATH --dataset FILE --output_dir DIR --resume_from_checkpoint {latest,PATH}."
        ),
    )
    train.add_argument("--config", help="YAML recipe (read with yaml.safe_load)")
    train.add_argument("--help-keys", action="store_true", help="list videoktr's own configuration keys and exit")
    train.set_defaults(handler=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "handler", None) is _train:
        if args.help_keys:
            _print_train_keys()
            return 0
        args.overrides = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
