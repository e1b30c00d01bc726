"""Training configuration: TRL's names where the concept is the same, TrainingArguments for the rest.

A run's configuration is merged in this order, each layer overriding the one before:

1. the field defaults below,
2. a ``preset`` (one word for the paper's configuration or a baseline, see ``PRESETS``),
3. a YAML file (``--config recipe.yaml``, read with ``yaml.safe_load``),
4. command-line flags (``--ktr_ratio 0.3``; ``--ktr-ratio`` is accepted too).

The layers are merged as typed values and the config is built once from them: text (a flag, or
a YAML scalar such as ``1e-6`` that YAML reads as a string) is converted by the type of its
field, and ``ktr_ratio`` (a float, or a mapping signal -> ratio) is parsed by the config itself
(``parse_ratio``). Unknown keys and bad values raise ``ConfigError`` naming the key and what is
allowed.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

from .. import defaults
from ..core.advantages import ADVANTAGE_SCALES
from ..core.losses import AGGREGATIONS, TRL_LOSS_TYPES
from ..core.selection import SCOPES, SELECTION_METHODS, SOFT_WEIGHTINGS
from ..core.signals import DEFAULT_CHUNK_SIZE, SIGNALS
from ..data.dataset import ON_BAD_SAMPLE
from ..data.pixels import PixelBudget
from ..models.prompt import TEMPORAL_MODES, VISUAL_MODES
from ..rollout.vllm_backend import WEIGHT_SYNC_PATHS

TOKEN_SELECTIONS = ("ktr", "entropy", "none")
KTR_DELTAS = ("abs", "signed")
KTR_WEIGHTINGS = ("hard", *SOFT_WEIGHTINGS)
ROLLOUT_BACKENDS = ("hf", "vllm")
KTR_RATIO_RULES = ("fixed", "mass")


class ConfigError(ValueError):
    """A configuration key is unknown or its value is not allowed."""


# Each preset sets only what defines the method; everything else keeps its default, and any
# key given in the YAML file or on the command line overrides the preset.
PRESETS: dict[str, dict[str, Any]] = {
    # Video-KTR (the paper): the union of the top 20% visual, temporal and entropy tokens of
    # each prompt's group, hard mask, clipped GRPO with the KL term masked alike.
    "video_ktr": {
        "token_selection": "ktr",
        "ktr_signals": list(SIGNALS),
        "ktr_ratio": 0.2,
        "ktr_scope": "group",
        "ktr_weighting": "hard",
        "temporal_reward_bonus": False,
    },
    # Vanilla GRPO: every completion token is updated.
    "grpo": {"token_selection": "none", "temporal_reward_bonus": False},
    # T-GRPO (Video-R1): vanilla GRPO plus the reward bonus for beating the shuffled video.
    "t_grpo": {"token_selection": "none", "temporal_reward_bonus": True},
    # "Beyond the 80/20 rule": only the top 20% highest-entropy tokens, thresholded over the batch.
    "entropy_80_20": {
        "token_selection": "entropy",
        "ktr_ratio": 0.2,
        "ktr_scope": "batch",
        "ktr_method": "quantile",
        "ktr_weighting": "hard",
        "temporal_reward_bonus": False,
    },
}


def _choice(key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


KtrRatio = float | dict[str, float]
"""``ktr_ratio``'s type: one share for every signal, or one per signal."""


def parse_ratio(value: Any, key: str = "ktr_ratio") -> KtrRatio:
    """``0.2``, ``"0.2"``, ``{"visual": 0.2, ...}`` or ``"visual=0.2,temporal=0.1"`` (the
    command line's form) -> a float or a mapping signal -> float, each in [0, 1]."""
    if isinstance(value, Mapping):
        items = dict(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        items = None
        number = float(value)
    elif isinstance(value, str) and "=" in value:
        items = {}
        for part in value.split(","):
            name, _, number_text = part.partition("=")
            items[name.strip()] = number_text.strip()
    elif isinstance(value, str):
        items = None
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r} is not a number or 'signal=ratio,...' list") from None
    else:
        raise ConfigError(f"{key}={value!r} must be a number in [0, 1] or a mapping signal -> ratio")
    if items is None:
        if not 0.0 <= number <= 1.0:
            raise ConfigError(f"{key}={value!r} must lie in [0, 1]")
        return number
    ratios = {}
    for name, raw in items.items():
        if name not in SIGNALS:
            raise ConfigError(f"{key} names an unknown signal {name!r}; signals are: {', '.join(SIGNALS)}")
        ratios[name] = parse_ratio(raw, f"{key}[{name}]")
    return ratios


@dataclass
class VideoGRPOConfig(TrainingArguments):
    """Everything a ``videoktr train`` run needs. TrainingArguments' fields (learning rate,
    batch sizes, checkpointing, ``report_to``, DeepSpeed/FSDP) work as in any Trainer;
    ``per_device_train_batch_size`` counts *prompts*, each expanded to ``num_generations``
    completions on the same process."""

    # ---------------------------------------------------------------- what to train on
    model: str | None = field(default=None, metadata={"help": "local directory of the policy model"})
    dataset: str | None = field(default=None, metadata={"help": "Video-R1 format .json or .jsonl file"})
    data_root: str | None = field(
        default=None, metadata={"help": "directory that relative media paths resolve against (default: the dataset's)"}
    )
    preset: str | None = field(
        default=None, metadata={"help": f"one of {', '.join(PRESETS)}; individual keys override it"}
    )
    fps: float = field(default=defaults.FPS, metadata={"help": "frames sampled per second of video"})
    min_frames: int = field(default=defaults.MIN_FRAMES, metadata={"help": "fewest frames sampled per video"})
    max_frames: int = field(default=defaults.MAX_FRAMES, metadata={"help": "most frames sampled per video"})
    max_pixels: int | None = field(
        default=None, metadata={"help": "total pixels of a prompt's media after resizing: all frames of a clip, or the image"}
    )
    video_min_pixels: int | None = field(
        default=None,
        metadata={"help": f"pixels of one video frame, at least (qwen-vl-utils' VIDEO_MIN_PIXELS; the official "
                  f"recipes: {defaults.VIDEO_FRAME_PIXELS}); wins over max_pixels"},
    )
    video_max_pixels: int | None = field(
        default=None,
        metadata={"help": f"pixels of one video frame, at most (the official recipes: {defaults.VIDEO_FRAME_PIXELS})"},
    )
    image_max_pixels: int | None = field(
        default=None, metadata={"help": f"pixels of an image, at most (the official recipes: {defaults.IMAGE_MAX_PIXELS})"}
    )
    on_bad_sample: str = field(
        default="skip", metadata={"help": "a missing/corrupt video or malformed row: 'skip' (count, warn) or 'raise'"}
    )

    # ---------------------------------------------------------------- rollouts (TRL's names)
    num_generations: int = field(default=8, metadata={"help": "completions sampled per prompt (G)"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling probability mass"})
    max_prompt_length: int | None = field(
        default=None, metadata={"help": "longest prompt in tokens, video included; longer prompts are an error"}
    )
    max_completion_length: int = field(default=768, metadata={"help": "most tokens generated per completion"})
    num_iterations: int = field(default=1, metadata={"help": "policy updates per batch of rollouts (mu)"})

    # ---------------------------------------------------------------- objective
    beta: float = field(default=0.04, metadata={"help": "KL coefficient towards the reference model"})
    epsilon: float = field(default=0.2, metadata={"help": "lower clip range: ratio >= 1 - epsilon"})
    epsilon_high: float | None = field(default=None, metadata={"help": "upper clip range (default: epsilon)"})
    loss_aggregation: str = field(default="seq_mean", metadata={"help": f"one of {', '.join(AGGREGATIONS)}"})
    loss_type: str | None = field(
        default=None,
        metadata={"help": "TRL's name for the aggregation, instead of loss_aggregation: "
                  + ", ".join(f"{name} ({aggregation})" for name, aggregation in TRL_LOSS_TYPES.items())},
    )
    use_bias_correction_kl: bool = field(
        default=False,
        metadata={"help": "weight the k3 KL term by the importance ratio (TRL 1.16's default; ours keeps the paper's)"},
    )
    scale_rewards: str = field(default="std", metadata={"help": "advantage scaling: 'std' (GRPO) or 'none'"})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={"help": "built-in names (accuracy, format) or module:function"},
    )
    reward_weights: list[float] | None = field(default=None, metadata={"help": "one weight per reward function"})

    # ---------------------------------------------------------------- key-token selection
    token_selection: str = field(default="ktr", metadata={"help": f"one of {', '.join(TOKEN_SELECTIONS)}"})
    ktr_signals: list[str] = field(default_factory=lambda: list(SIGNALS), metadata={"help": "signals in the union"})
    ktr_ratio: KtrRatio = field(
        default=0.2,
        metadata={"help": "share selected per signal: 0.2, or per signal: 'visual=0.2,temporal=0.1' (a mapping in YAML)",
                  "text_on_command_line": True},
    )
    ktr_ratio_rule: str = field(
        default="fixed",
        metadata={"help": "how many tokens a unit selects: 'fixed' (ktr_ratio of them) or 'mass' (the fewest top "
                          "tokens holding ktr_mass of the unit's score mass, within ktr_min_ratio..ktr_max_ratio)"},
    )
    ktr_mass: float = field(default=0.5, metadata={"help": "the share p of a unit's score mass ('mass' rule)"})
    ktr_min_ratio: float = field(default=0.05, metadata={"help": "the least share of a unit selected ('mass' rule)"})
    ktr_max_ratio: float = field(default=0.5, metadata={"help": "the largest share of a unit selected ('mass' rule)"})
    ktr_scope: str = field(default="group", metadata={"help": f"selection unit: {', '.join(SCOPES)}"})
    ktr_method: str = field(default="topk", metadata={"help": f"{', '.join(SELECTION_METHODS)} (quantile: the official rule)"})
    ktr_delta: str = field(default="abs", metadata={"help": "log-prob deltas: 'abs' (paper) or 'signed' (official code)"})
    ktr_weighting: str = field(default="hard", metadata={"help": f"one of {', '.join(KTR_WEIGHTINGS)}"})
    ktr_temperature: float | None = field(default=None, metadata={"help": "soft weighting temperature"})
    visual_mode: str = field(default="zero_embeddings", metadata={"help": f"one of {', '.join(VISUAL_MODES)}"})
    temporal_mode: str = field(default="permute_groups", metadata={"help": f"one of {', '.join(TEMPORAL_MODES)}"})
    num_shuffles: int = field(default=1, metadata={"help": "derangements averaged for the temporal signal"})
    mask_kl: bool = field(default=True, metadata={"help": "apply the key-token mask to the KL term too"})
    # ---------------------------------------------------------------- LoRA (TRL's names)
    use_peft: bool = field(
        default=False,
        metadata={"help": "train LoRA adapters (peft; pip install videoktr[peft]) instead of every weight; the KL "
                          "term's reference is the same model with its adapters off, so no second copy is held"},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (the update is alpha / r x BA)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA branch's input"})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "module names (or one regex) to adapt; default: the language model's attention and MLP "
                          "projections (q/k/v/o_proj, gate/up/down_proj), not the vision encoder"},
    )
    freeze_vision_encoder: bool = field(
        default=False, metadata={"help": "train only the language model: the vision encoder and merger take no update"}
    )
    attribution_chunk_size: int = field(default=DEFAULT_CHUNK_SIZE, metadata={"help": "positions per lm_head chunk"})
    encoder_chunk_groups: int | None = field(
        default=None,
        metadata={"help": "temporal groups per vision-encoder call on a video (exact; bounds the encoder's memory "
                          "on long videos, each chunk checkpointed in the loss when the encoder trains); unset: the "
                          "whole video in one call"},
    )
    prefill_chunk_tokens: int | None = field(
        default=None,
        metadata={"help": "long prompts: the prompt runs through the decoder this many tokens at a time, each chunk "
                          "checkpointed in the loss, and the completions packed into one sequence over its cache "
                          "(equal up to rounding; bounds memory beyond the KV cache on long videos); unset: one call"},
    )
    score_in_loss_forward: bool = field(
        default=True,
        metadata={"help": "take the real input's log-probs, entropy and gradient weights from the loss's own forward "
                          "and run only the counterfactual passes beside it (one forward less per prompt); false: a "
                          "separate no-grad scoring pass at rollout time"},
    )

    # ---------------------------------------------------------------- rollouts
    rollout_backend: str = field(
        default="hf", metadata={"help": "who samples the completions: 'hf' (the policy's own generate) or 'vllm' "
                                        "(a rollout server, see videoktr rollout-server)"}
    )
    vllm_server_host: str = field(default="127.0.0.1", metadata={"help": "the vLLM rollout server's host"})
    vllm_server_port: int = field(default=8765, metadata={"help": "the vLLM rollout server's port"})
    vllm_server_timeout: float = field(
        default=240.0, metadata={"help": "seconds to wait for the rollout server to answer a connection"}
    )
    vllm_weight_sync: str = field(
        default="collective",
        metadata={"help": "how the policy's weights reach the server after each optimizer step: 'collective' "
                          "(broadcast over a process group with it: gloo on CPU, nccl on GPUs) or 'safetensors' "
                          "(files written to output_dir/rollout_weights, which the server must see)"},
    )
    vllm_importance_sampling_correction: bool = field(
        default=True, metadata={"help": "weight each token by min(exp(logp_trainer - logp_vllm), cap) (TIS)"}
    )
    vllm_importance_sampling_cap: float = field(
        default=2.0, metadata={"help": "the truncation C of the importance weights"}
    )

    # ---------------------------------------------------------------- T-GRPO baseline
    temporal_reward_bonus: bool = field(default=False, metadata={"help": "T-GRPO's shuffled-video reward bonus"})
    temporal_bonus_threshold: float = field(default=0.8, metadata={"help": "bonus when acc >= this x shuffled acc"})
    temporal_bonus: float = field(default=0.3, metadata={"help": "added to correct completions' reward"})

    # ---------------------------------------------------------------- observability and the output directory
    rollout_dump_steps: int = field(default=0, metadata={"help": "write a JSONL rollout dump every N steps (0: never)"})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "start a fresh run in an output_dir that holds another run's checkpoints (removes them)"}
    )
    resume_despite_changes: bool = field(
        default=False, metadata={"help": "resume although the model, dataset or method differ from the run's"}
    )

    # TrainingArguments defaults that suit RL: one prompt per device (the paper's setting; its G
    # completions make the batch), log every step, keep our dataset's columns.
    per_device_train_batch_size: int = field(default=1, metadata={"help": "prompts per device per micro-step"})
    logging_steps: float = field(default=1, metadata={"help": "log every N steps"})
    remove_unused_columns: bool = field(default=False, metadata={"help": "kept False: samples are not tensors"})

    def __post_init__(self) -> None:
        _choice("token_selection", self.token_selection, TOKEN_SELECTIONS)
        _choice("ktr_scope", self.ktr_scope, SCOPES)
        _choice("ktr_method", self.ktr_method, SELECTION_METHODS)
        _choice("ktr_delta", self.ktr_delta, KTR_DELTAS)
        _choice("ktr_weighting", self.ktr_weighting, KTR_WEIGHTINGS)
        _choice("visual_mode", self.visual_mode, VISUAL_MODES)
        _choice("temporal_mode", self.temporal_mode, TEMPORAL_MODES)
        _choice("loss_aggregation", self.loss_aggregation, AGGREGATIONS)
        _choice("vllm_weight_sync", self.vllm_weight_sync, WEIGHT_SYNC_PATHS)
        if self.loss_type is not None:
            _choice("loss_type", self.loss_type, tuple(TRL_LOSS_TYPES))
            aggregation = TRL_LOSS_TYPES[self.loss_type]
            if self.loss_aggregation not in ("seq_mean", aggregation):  # seq_mean: the default, not a choice
                raise ConfigError(f"loss_type={self.loss_type!r} is loss_aggregation={aggregation!r}, but "
                                  f"loss_aggregation={self.loss_aggregation!r} is set too; give one of them")
            self.loss_aggregation = aggregation
        _choice("scale_rewards", self.scale_rewards, ADVANTAGE_SCALES)
        _choice("rollout_backend", self.rollout_backend, ROLLOUT_BACKENDS)
        if not self.vllm_importance_sampling_cap > 0:
            raise ConfigError(f"vllm_importance_sampling_cap={self.vllm_importance_sampling_cap!r} must be positive")
        if not self.vllm_server_timeout > 0:
            raise ConfigError(f"vllm_server_timeout={self.vllm_server_timeout!r} must be positive")
        if not 0 < self.vllm_server_port < 65536:
            raise ConfigError(f"vllm_server_port={self.vllm_server_port!r} must be a port number (1-65535)")
        _choice("on_bad_sample", self.on_bad_sample, ON_BAD_SAMPLE)
        if self.preset is not None:
            _choice("preset", self.preset, tuple(PRESETS))
        for name in self.ktr_signals:
            _choice("ktr_signals", name, SIGNALS)
        if not self.ktr_signals and self.token_selection == "ktr":
            raise ConfigError("ktr_signals is empty; token_selection 'ktr' needs at least one of visual, temporal, entropy")
        self.ktr_ratio = parse_ratio(self.ktr_ratio)
        _choice("ktr_ratio_rule", self.ktr_ratio_rule, KTR_RATIO_RULES)
        for key in ("ktr_mass", "ktr_min_ratio", "ktr_max_ratio"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key}={value!r} must be a number in [0, 1]")
        if self.ktr_min_ratio > self.ktr_max_ratio:
            raise ConfigError(f"ktr_min_ratio={self.ktr_min_ratio} is larger than ktr_max_ratio={self.ktr_max_ratio}")
        if self.ktr_ratio_rule == "mass" and (self.ktr_weighting != "hard" or self.ktr_method != "topk"):
            raise ConfigError("ktr_ratio_rule 'mass' selects a hard set of top tokens: it needs ktr_weighting 'hard' "
                              f"and ktr_method 'topk' (got {self.ktr_weighting!r}, {self.ktr_method!r})")
        if isinstance(self.ktr_ratio, dict):
            missing = [name for name in self.selected_signals if name not in self.ktr_ratio]
            if missing:
                raise ConfigError(f"ktr_ratio gives no ratio for {missing}; give one per signal in ktr_signals")
        if self.use_peft:
            if not isinstance(self.lora_r, int) or self.lora_r < 1:
                raise ConfigError(f"lora_r={self.lora_r!r} must be a positive integer")
            if not 0.0 <= self.lora_dropout < 1.0:
                raise ConfigError(f"lora_dropout={self.lora_dropout!r} must be in [0, 1)")
        for name in ("encoder_chunk_groups", "prefill_chunk_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        if self.prefill_chunk_tokens is not None and self.activation_checkpointing:
            raise ConfigError("prefill_chunk_tokens checkpoints the prompt chunk by chunk itself, while "
                              "activation_checkpointing makes the loss run [G, prompt + completion] full sequences "
                              "instead (a KV cache does not survive it); set one of them")
        positive_ints = ("num_generations", "max_completion_length", "num_iterations", "num_shuffles",
                         "attribution_chunk_size", "min_frames", "max_frames")
        for key in positive_ints:
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}={value!r} must be a positive integer")
        try:
            self.pixel_budget  # noqa: B018 - validates the four pixel keys together
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if self.min_frames > self.max_frames:
            raise ConfigError(f"min_frames={self.min_frames} is larger than max_frames={self.max_frames}")
        if self.num_generations < 2:
            raise ConfigError("num_generations must be at least 2: GRPO's advantage compares completions of a prompt")
        for key in ("fps", "temperature"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key}={getattr(self, key)!r} must be positive")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p!r} must lie in (0, 1]")
        for key in ("beta", "epsilon"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}={getattr(self, key)!r} must be non-negative")
        if self.epsilon_high is None:
            self.epsilon_high = self.epsilon
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs):
            raise ConfigError(
                f"reward_weights has {len(self.reward_weights)} values for {len(self.reward_funcs)} reward_funcs"
            )
        if self.rollout_dump_steps < 0:
            raise ConfigError(f"rollout_dump_steps={self.rollout_dump_steps} must be >= 0")
        super().__post_init__()

    @property
    def pixel_budget(self) -> PixelBudget:
        """The pixel keys as one ``data.pixels.PixelBudget``."""
        return PixelBudget(self.max_pixels, self.video_min_pixels, self.video_max_pixels, self.image_max_pixels)

    @property
    def selected_signals(self) -> tuple[str, ...]:
        """The signals whose top tokens form the mask (none for vanilla GRPO)."""
        if self.token_selection == "ktr":
            return tuple(self.ktr_signals)
        if self.token_selection == "entropy":
            return ("entropy",)
        return ()


# ---------------------------------------------------------------------------- loading


def config_keys() -> list[str]:
    return [f.name for f in fields(VideoGRPOConfig) if f.init]


def _unknown_key(key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, config_keys(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `videoktr train --help` for every key"
    return ConfigError(f"unknown key {key!r} in {source}{hint}")


def _check_keys(values: Mapping[str, Any], source: str) -> None:
    known = set(config_keys())
    for key in values:
        if key not in known:
            raise _unknown_key(key, source)


class _FlagParser(HfArgumentParser):
    """transformers' parser for the config's flags (``--key`` and ``--key-with-dashes``,
    ``--no_flag`` for booleans), except that a field marked ``text_on_command_line`` (a type
    argparse cannot express, ``ktr_ratio``) is read as text, for the config to parse."""

    def error(self, message: str):
        """argparse's errors (a flag without its value, a value of the wrong type) as one
        ``ConfigError``, without argparse's usage dump."""
        raise ConfigError(message)

    @staticmethod
    def _parse_dataclass_field(parser, field):
        if not field.metadata.get("text_on_command_line"):
            HfArgumentParser._parse_dataclass_field(parser, field)
            return
        names = [f"--{field.name}", *([f"--{field.name.replace('_', '-')}"] if "_" in field.name else [])]
        parser.add_argument(*names, type=str, default=field.default, help=field.metadata.get("help"))


def _flag_parser() -> _FlagParser:
    return _FlagParser(VideoGRPOConfig)


def _parse_flags(parser: _FlagParser, argv: Sequence[str]) -> dict[str, Any]:
    """The keys given on the command line, typed by their fields."""
    given = []
    for token in argv:
        if token.startswith("--"):
            action = parser._option_string_actions.get(token.split("=", 1)[0])
            if action is None:
                raise _unknown_key(token[2:].split("=", 1)[0].replace("-", "_"), "the command line")
            given.append(action.dest)
    namespace = parser.parse_args(list(argv))  # errors raise ConfigError (_FlagParser.error)
    return {key: getattr(namespace, key) for key in given}


def _typed(parser: _FlagParser, values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """YAML values with text converted by their field's type (YAML reads ``1e-6`` as a string);
    ``null`` means "not set" (the preset's or the default's value stays)."""
    typed = {}
    for key, value in values.items():
        if value is None:
            continue
        convert = parser._option_string_actions[f"--{key}"].type
        if convert not in (None, str):
            try:
                if isinstance(value, str):
                    value = convert(value)
                elif isinstance(value, list):
                    value = [convert(item) if isinstance(item, str) else item for item in value]
            except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
                raise ConfigError(f"{key}={value!r} in {source} is not a valid value: {error}") from error
        typed[key] = value
    return typed


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open() as handle:
            values = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:  # a syntax error, or a tag safe_load refuses (!!python/...)
        where = getattr(error, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {path}{line} is not a plain YAML mapping: {getattr(error, 'problem', error)}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value, not {type(values).__name__}")
    _check_keys(values, str(path))
    return values


# Keys that only mean something when tokens are selected (token_selection "ktr" or "entropy").
SELECTION_KEYS = ("ktr_signals", "ktr_ratio", "ktr_ratio_rule", "ktr_mass", "ktr_min_ratio", "ktr_max_ratio", "ktr_scope", "ktr_method", "ktr_delta", "ktr_weighting",
                  "ktr_temperature")


def _check_no_ignored_keys(config: VideoGRPOConfig, given: set[str]) -> None:
    """Refuse keys the user set that the chosen method ignores (``--preset grpo --ktr_signals
    visual`` would train every token, silently)."""
    method = f"token_selection={config.token_selection!r}" + (f" (preset {config.preset})" if config.preset else "")
    if config.token_selection == "none":
        ignored = sorted(given & set(SELECTION_KEYS))
        if ignored:
            raise ConfigError(
                f"{', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect with {method}: every "
                "token is trained; drop them, or choose a key-token method (preset video_ktr or entropy_80_20)"
            )
    if config.token_selection == "entropy" and "ktr_signals" in given and list(config.ktr_signals) != ["entropy"]:
        raise ConfigError(f"ktr_signals={config.ktr_signals} has no effect with {method}, which selects by entropy "
                          "alone; use token_selection ktr to choose signals")


def load_config(argv: Sequence[str] = (), config_file: str | Path | None = None, **overrides: Any) -> VideoGRPOConfig:
    """Merge defaults <- preset <- YAML file <- ``overrides`` (keyword, typed) <- ``argv`` flags
    into one ``VideoGRPOConfig``. ``None`` values in the file or the overrides are left out."""
    parser = _flag_parser()
    file_values = _typed(parser, read_yaml(config_file), str(config_file)) if config_file is not None else {}
    _check_keys(overrides, "the arguments")
    flag_values = _parse_flags(parser, argv)
    overrides = {key: value for key, value in overrides.items() if value is not None}
    preset = next((layer["preset"] for layer in (flag_values, overrides, file_values) if layer.get("preset")), None)
    preset_values = {}
    if preset is not None:
        _choice("preset", preset, tuple(PRESETS))
        preset_values = PRESETS[preset]
    merged = {**preset_values, **file_values, **overrides, **flag_values}
    try:
        config = VideoGRPOConfig(**merged)
    except ConfigError:
        raise
    except ValueError as error:  # TrainingArguments' own checks (e.g. bf16 without a GPU)
        raise ConfigError(str(error)) from error
    _check_no_ignored_keys(config, set(file_values) | set(overrides) | set(flag_values))
    return config


def check_fsdp_plugin(plugin) -> None:
    """Raise a ``ConfigError`` for an accelerate FSDP configuration the trainer cannot run.

    FSDP1 (``FullyShardedDataParallel``) is refused: its flat parameters are gathered only
    inside the wrapper's forward and generation would need ``summon_full_params``; FSDP2
    (``fully_shard``) is what the root-forward adapter path is built and tested for.
    """
    version = getattr(plugin, "fsdp_version", 1)
    if version != 2:
        raise ConfigError(
            f"FSDP version {version} is not supported; set fsdp_version: 2 in the accelerate config "
            "(configs/accelerate/fsdp.yaml), or use DeepSpeed ZeRO-3 (configs/accelerate/zero3.yaml)"
        )
