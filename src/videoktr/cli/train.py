"""``videoktr train``: every ``VideoGRPOConfig`` key as a flag (``--help_keys`` lists videoktr's
own), merged over a preset and a YAML recipe, then the training recipe of ``videoktr.train.run``."""

from __future__ import annotations

import argparse
import dataclasses
import textwrap
import types
import typing

from ._flags import add_flag

NAME = "train"
OWN_HELP = True  # --help also lists the common configuration keys
HELP = "GRPO with key-token reinforcement on a local model and a Video-R1 format dataset"
DESCRIPTION = (
    "Train with GRPO and key-token reinforcement. Every configuration key (see --help_keys, and "
    "any transformers TrainingArguments key) can be set in the YAML file given by --config and "
    "overridden by a flag, e.g. --ktr_ratio 0.3 (or --ktr-ratio 0.3). Common flags: --preset "
    "{video_ktr,grpo,t_grpo,entropy_80_20} --model PATH --dataset FILE --output_dir DIR "
    "--resume_from_checkpoint {latest,PATH}."
)


# The keys a newcomer sets first, shown by --help with their types and defaults (in this order).
COMMON_KEYS = (
    ("model", "local directory of the policy (a Qwen2-VL, Qwen2.5-VL or Qwen3-VL checkpoint)"),
    ("dataset", "Video-R1 format .json/.jsonl (`videoktr synth --out DIR --n N` writes one)"),
    ("output_dir", "where checkpoints, logs and videoktr_run.json go (unset: ./trainer_output)"),
    ("preset", "video_ktr, grpo, t_grpo or entropy_80_20"),
    ("max_steps", "optimizer steps (-1: num_train_epochs decides)"),
    ("num_train_epochs", "passes over the dataset when max_steps is -1"),
    ("learning_rate", "the optimizer's learning rate"),
    ("per_device_train_batch_size", "prompts per device per micro-step (each gives num_generations completions)"),
    ("gradient_accumulation_steps", "micro-steps per optimizer step"),
    ("num_generations", "completions per prompt (G)"),
    ("save_steps", "save a checkpoint every N steps"),
    ("logging_steps", "log every N steps"),
    ("report_to", "none, tensorboard, wandb, ... (the Trainer's integrations)"),
    ("resume_from_checkpoint", "latest (the newest complete checkpoint of output_dir) or a checkpoint path"),
    ("overwrite_output_dir", "start over in an output_dir that holds another run's checkpoints"),
    ("seed", "the run's seed"),
    ("bf16", "bfloat16 training (GPUs)"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action=_HelpWithKeys, nargs=0, help="show this help and the common keys, and exit")
    parser.add_argument("--config", help="YAML recipe (read with yaml.safe_load)")
    add_flag(parser, "help_keys", action="store_true",
             help="list every videoktr configuration key with its type and default, and exit")
    parser.set_defaults(takes_config_flags=True)


def _type_name(annotation: object) -> str:
    """``int``, ``str | None``, ``list[str]``: the same text whether the annotation is still a
    string or was resolved (HfArgumentParser resolves the fields' types in place)."""
    if isinstance(annotation, str):
        return annotation
    if annotation is type(None):
        return "None"
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(argument) for argument in arguments)
    if arguments:
        return f"{_type_name(typing.get_origin(annotation))}[{', '.join(_type_name(a) for a in arguments)}]"
    return getattr(annotation, "__name__", str(annotation))


def describe_key(item: dataclasses.Field, annotation: object, help_text: str | None = None) -> str:
    """``  --name TYPE (default D)  help`` for one configuration field (``annotation``: its
    declared type; ``item.type`` is not, once HfArgumentParser has narrowed it in place)."""
    if item.default is not dataclasses.MISSING:
        default = item.default
    elif item.default_factory is not dataclasses.MISSING:
        default = item.default_factory()
    else:
        default = None
    text = help_text or item.metadata.get("help") or ""
    return f"  --{item.name} {_type_name(annotation)} (default {default!r})\n      {text}"


class _HelpWithKeys(argparse.Action):
    """``-h``: the usage and options, then the common configuration keys with their defaults
    (read from the configuration class only when asked: it imports transformers)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from videoktr.train.config import VideoGRPOConfig

        fields = {item.name: item for item in dataclasses.fields(VideoGRPOConfig)}
        hints = typing.get_type_hints(VideoGRPOConfig)
        lines = [describe_key(fields[name], hints[name], text) for name, text in COMMON_KEYS]
        parser.epilog = ("common configuration keys (--help_keys lists videoktr's own, and every transformers "
                         "TrainingArguments key works too):\n" + "\n".join(lines))
        parser.description = textwrap.fill(DESCRIPTION, 88)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.print_help()
        parser.exit()


def print_keys() -> None:
    from videoktr.train.config import VideoGRPOConfig

    hints = typing.get_type_hints(VideoGRPOConfig)
    for item in dataclasses.fields(VideoGRPOConfig):
        if item.init and item.metadata.get("help") and item.name in VideoGRPOConfig.__annotations__:
            print(describe_key(item, hints[item.name]))


def run(args: argparse.Namespace) -> int:
    if args.help_keys:
        print_keys()
        return 0
    from videoktr.train.config import load_config
    from videoktr.train.run import train

    train(load_config(args.config_flags, config_file=args.config))
    return 0
