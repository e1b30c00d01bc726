"""The demo's policy and its stages, shared by ``videoktr demo`` and ``videoktr ablate``.

    build a small Qwen2.5-VL (tokenizer trained on the world's text) -> pre-train its vision
    encoder on the frames -> (optionally) the order stage -> warm up on the traces (encoder
    frozen, the first shape's colour weighted) -> RL with the trainer -> evaluate

``DemoConfig`` holds the size of every stage; ``prepare_policy`` runs the stages before RL;
``train_rl`` runs the trainer with the ``video_ktr`` preset and an arm's overrides;
``evaluation_settings`` is how every run is evaluated. The stages' reasons are in their modules
(``experiments.encoder``, ``experiments.order``, ``experiments.warmup``) and in
``docs/demo.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import defaults
from ..data.dataset import VideoR1Dataset
from ..models.tiny import CORPUS, build_tiny_model, build_tokenizer
from ..synthetic import TASKS, check_task, world_corpus
from ..train.config import KtrRatio, load_config
from ..train.trainer import VideoGRPOTrainer
from .encoder import pretrain_vision_encoder
from .order import first_appearance_accuracy, first_colour_weights, pretrain_first_appearance
from .warmup import confused_teacher, supervised_warmup

__all__ = ["SHARED_OVERRIDES", "DemoConfig", "PreparedPolicy", "StageTimer", "build_policy", "evaluation_settings", "prepare_policy",
           "train_rl", "world_split"]


# Trainer keys the demo's RL and every arm of ``videoktr ablate`` share, so that arms differ only in
# their token selection: the KL term covers every completion token in every arm (GRPO's mask is
# every token; a key-token mask on the KL would also change the regulariser), and RL leaves the
# vision encoder frozen, as the warm-up did. The demo's run is the ablation's V+E+T arm.
SHARED_OVERRIDES: dict[str, Any] = {"mask_kl": False, "freeze_vision_encoder": True}

# Each world's defaults for the DemoConfig fields left at None. The filler tasks (single shapes,
# one colour to read) need shorter encoder and warm-up stages than the standard world; their
# warm-up teacher (``warmup.confused_teacher``) says green for 60% of the yellow shapes and red
# for 60% of the blue ones, so that RL has headroom it can reach (docs/selection.md). The
# standard world's teacher is exact.
FILLER_TASK_DEFAULTS: dict[str, Any] = {
    "encoder_pretrain_steps": 600, "warmup_steps": 500,
    "warmup_teacher_confusions": {"yellow": "green", "blue": "red"}, "warmup_teacher_confusion_rate": 0.6,
}
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "standard": {"encoder_pretrain_steps": 1200, "warmup_steps": 1000, "warmup_teacher_confusions": {},
                 "warmup_teacher_confusion_rate": 0.0},
    **{task: FILLER_TASK_DEFAULTS for task in TASKS if task != "standard"},
}


@dataclass
class DemoConfig:
    """Sizes of every stage; the defaults finish in a few minutes on a 2-core CPU. ``task``: which
    world (``synthetic.TASKS``): ``filler`` (the default: one colour question per single-shape
    clip, the warm-up's teacher confused on two colours, see ``docs/selection.md``) or
    ``standard`` (the eight question families, an exact teacher)."""

    output_dir: Path = Path(defaults.DEMO_OUTPUT_DIR)
    seed: int = 0
    task: str = "filler"
    num_rows: int = 2000
    test_fraction: float = 0.1
    video_fps: int = 4
    hidden_size: int = 128
    num_layers: int = 2
    vision_hidden_size: int = 64
    vocab_size: int = 640
    encoder_pretrain_steps: int | None = None  # None: the task's (TASK_DEFAULTS)
    encoder_pretrain_learning_rate: float = 3e-3
    order_pretrain_steps: int = 0
    order_pretrain_learning_rate: float = 5e-4
    warmup_steps: int | None = None
    warmup_prompts_per_step: int = 4
    warmup_learning_rate: float = 2e-3
    warmup_freeze_vision_encoder: bool = True
    warmup_first_colour_weight: float = 10.0
    warmup_teacher_confusions: dict[str, str] | None = None
    warmup_teacher_confusion_rate: float | None = None
    rl_steps: int = 100
    rl_prompts_per_step: int = 4
    num_generations: int = 8
    rl_learning_rate: float = 5e-5
    max_completion_length: int = 88
    ktr_ratio: KtrRatio = 0.2
    eval_limit: int | None = None
    attribution_limit: int = 60
    progress: bool = True

    def __post_init__(self) -> None:
        for name, value in TASK_DEFAULTS[check_task(self.task)].items():
            if getattr(self, name) is None:
                setattr(self, name, dict(value) if isinstance(value, dict) else value)

    @classmethod
    def quick(cls, output_dir: Path = Path(defaults.DEMO_OUTPUT_DIR), seed: int = 0, **overrides: Any) -> DemoConfig:
        """``videoktr demo --quick``: every stage, much smaller, in well under a minute (a smoke
        test: its figures mean nothing)."""
        return cls(**{**dict(output_dir=Path(output_dir), seed=seed, num_rows=90, encoder_pretrain_steps=20,
                             warmup_steps=40, rl_steps=8, eval_limit=18, attribution_limit=12), **overrides})


@dataclass
class StageTimer:
    """Runs the stages of a pipeline, printing each one's name and time, and keeps the times."""

    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, function, *args, **kwargs):
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        print(f"   done in {self.seconds[name]:.1f} s", flush=True)
        return result


def world_split(world_dir: Path, split: str, config: DemoConfig) -> VideoR1Dataset:
    """``train`` or ``test`` of a world written by ``generate_dataset``, decoded at the world's
    frame rate with the default frame counts."""
    return VideoR1Dataset(Path(world_dir) / f"{split}.jsonl", fps=config.video_fps, min_frames=defaults.MIN_FRAMES,
                          max_frames=defaults.MAX_FRAMES)


def evaluation_settings(config: DemoConfig, progress: bool | None = None) -> dict[str, Any]:
    """The demo's keyword arguments for ``eval.run_evaluation``: greedy, frames sampled at the
    world's fps and sized by the processor as in training (not the 7B evaluation's per-frame
    budget), ``eval_limit`` questions; ``videoktr ablate`` evaluates every run the same way."""
    return {"num_frames": defaults.MAX_FRAMES, "fps": float(config.video_fps), "temperature": 0.0,
            "video_min_pixels": None, "video_max_pixels": None,
            "max_new_tokens": config.max_completion_length, "limit": config.eval_limit,
            "progress": config.progress if progress is None else progress}


def build_policy(config: DemoConfig):
    """The demo's untrained policy: a tokenizer trained on the world's text (and the tiny
    models' English corpus), and a Qwen2.5-VL of the config's sizes with random weights."""
    tokenizer = build_tokenizer(world_corpus(config.task) + list(CORPUS), vocab_size=config.vocab_size)
    return build_tiny_model(
        "qwen2_5_vl", seed=config.seed, tokenizer=tokenizer, hidden_size=config.hidden_size,
        num_layers=config.num_layers, vision_hidden_size=config.vision_hidden_size,
    )


@dataclass
class PreparedPolicy:
    """The demo's policy before RL and what each stage that made it reported (``encoder`` and
    ``order`` are None when their stage is switched off). ``first_colour``: ``(accuracy, rows)``
    of ``first_appearance_accuracy`` on the evaluation split after the warm-up, when given."""

    model: Any
    processor: Any
    warmup: Any
    encoder: Any = None
    order: Any = None
    first_colour: tuple[float | None, int] | None = None

    def encoder_figures(self) -> dict[str, float] | None:
        """How well the pre-trained encoder's tokens name the (colour, shape) pairs in their
        cells over its last steps; None when the encoder was not pre-trained."""
        if self.encoder is None:
            return None
        result = self.encoder
        return {"precision": result.label_precision, "recall": result.label_recall,
                "token_accuracy": result.label_accuracy}

    def first_colour_figures(self) -> dict[str, Any] | None:
        """How often the policy names the first shape's colour on held-out queue clips after the
        warm-up; None when no evaluation split was given."""
        if self.first_colour is None:
            return None
        accuracy, rows = self.first_colour
        return {"heldout_accuracy": accuracy, "heldout_rows": rows, "chance": 1 / 4}


def prepare_policy(config: DemoConfig, train_set: VideoR1Dataset, timer: StageTimer | None = None,
                   eval_set: VideoR1Dataset | None = None) -> PreparedPolicy:
    """The demo's policy, ready for RL: built from config; its vision encoder pre-trained on the
    world's frames (``encoder_pretrain_steps``); optionally its language model taught which shape
    appeared first (``order_pretrain_steps``, off by default: the warm-up's weighted first colour
    teaches it); then warmed up on the traces, and measured on ``eval_set`` when given.
    ``videoktr ablate`` starts every run from this."""
    timer = timer or StageTimer()
    torch.manual_seed(config.seed)
    model, processor = timer.run("build a tiny Qwen2.5-VL and a tokenizer trained on the world's text", build_policy, config)
    encoder = order = None
    if config.encoder_pretrain_steps:
        encoder = timer.run("pre-train the vision encoder on the world's frames", pretrain_vision_encoder, model,
                            processor, train_set, steps=config.encoder_pretrain_steps,
                            learning_rate=config.encoder_pretrain_learning_rate, seed=config.seed,
                            progress=config.progress)
    if config.order_pretrain_steps:
        order = timer.run("teach the language model which shape appeared first", pretrain_first_appearance, model,
                          processor, train_set, steps=config.order_pretrain_steps,
                          learning_rate=config.order_pretrain_learning_rate, seed=config.seed, eval_dataset=eval_set,
                          progress=config.progress)
    weights = (first_colour_weights(processor.tokenizer, config.warmup_first_colour_weight)
               if config.warmup_first_colour_weight != 1 else None)
    warmup = timer.run("supervised warm-up on reasoning traces", supervised_warmup, model, processor, train_set,
                       steps=config.warmup_steps, learning_rate=config.warmup_learning_rate,
                       prompts_per_step=config.warmup_prompts_per_step, seed=config.seed, progress=config.progress,
                       freeze_vision_encoder=config.warmup_freeze_vision_encoder, token_weights=weights,
                       target_text=confused_teacher(config.warmup_teacher_confusions,
                                                    config.warmup_teacher_confusion_rate))
    first_colour = first_appearance_accuracy(model, processor, eval_set) if eval_set is not None else None
    return PreparedPolicy(model, processor, warmup, encoder, order, first_colour)


def train_rl(model, processor, dataset: VideoR1Dataset, config: DemoConfig, overrides: dict | None = None,
             seed: int | None = None, output_dir: Path | None = None, label: str = "video_ktr",
             leave: bool = True, callbacks: list | None = None) -> list[dict[str, Any]]:
    """RL with the ``video_ktr`` preset at the demo's sizes and ``SHARED_OVERRIDES``; ``overrides``
    (typed trainer config keys) change the method, e.g. ``{"token_selection": "none"}`` for
    vanilla GRPO (``videoktr ablate``'s arms). Returns the log entries of the RL steps."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from ..train.callbacks import CompactProgressCallback

    values = dict(
        preset="video_ktr", output_dir=str(output_dir if output_dir is not None else config.output_dir / "rl"),
        max_steps=config.rl_steps, gradient_accumulation_steps=config.rl_prompts_per_step,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length, learning_rate=config.rl_learning_rate,
        fps=float(config.video_fps),
        seed=config.seed if seed is None else seed, save_strategy="no", report_to="none", logging_steps=1,
        rollout_dump_steps=max(config.rl_steps // 3, 1), disable_tqdm=not config.progress,
        use_cpu=not torch.cuda.is_available(), lr_scheduler_type="constant",
    )
    overrides = {**SHARED_OVERRIDES, **(overrides or {})}
    if overrides.get("token_selection", "ktr") != "none":  # vanilla GRPO selects nothing: no ratio
        values["ktr_ratio"] = config.ktr_ratio
    args = load_config(**{**values, **overrides})
    trainer = VideoGRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
    # One compact bar instead of the Trainer's metrics dict printed at every step.
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(CompactProgressCallback(f"RL {label}", disable=not config.progress, leave=leave))
    for callback in callbacks or ():
        trainer.add_callback(callback)
    trainer.train()
    model.eval()
    return [entry for entry in trainer.state.log_history if "reward" in entry]
