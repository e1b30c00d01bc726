"""``videoktr train``: every ``VideoGRPOConfig`` key as a flag (``--help_keys`` lists videoktr's
own), merged over a preset and a YAML recipe, then the training recipe of ``videoktr.train.run``."""

from __future__ import annotations

import argparse
import dataclasses

from ._flags import add_flag

NAME = "train"
HELP = "GRPO with key-token reinforcement on a local model and a Video-R1 format dataset"
DESCRIPTION = (
    "Train with GRPO and key-token reinforcement. Every configuration key (see --help_keys, and "
    "any transformers TrainingArguments key) can be set in the YAML file given by --config and "
    "overridden by a flag, e.g. --ktr_ratio 0.3 (or --ktr-ratio 0.3). Common flags: --preset "
    "{video_ktr,grpo,t_grpo,entropy_80_20} --model PATH --dataset FILE --output_dir DIR "
    "--resume_from_checkpoint {latest,PATH}."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML recipe (read with yaml.safe_load)")
    add_flag(parser, "help_keys", action="store_true", help="list videoktr's own configuration keys and exit")
    parser.set_defaults(takes_config_flags=True)


def print_keys() -> None:
    from videoktr.train.config import VideoGRPOConfig

    for item in dataclasses.fields(VideoGRPOConfig):
        if item.init and item.metadata.get("help") and item.name in VideoGRPOConfig.__annotations__:
            print(f"  --{item.name:<26} {item.metadata['help']}")


def run(args: argparse.Namespace) -> int:
    if args.help_keys:
        print_keys()
        return 0
    from videoktr.train.config import load_config
    from videoktr.train.run import train

    train(load_config(args.config_flags, config_file=args.config))
    return 0
