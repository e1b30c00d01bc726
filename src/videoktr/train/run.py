"""The training recipe behind ``videoktr train``: check the dataset, load a local model, train,
save; and the guards around one output directory.

An output directory holds one run. ``videoktr_run.json`` beside the checkpoints records what the
run trains (the model, the dataset, the method's keys) in readable form; a resume that would
continue it with another model or method is refused unless ``resume_despite_changes``, and a
fresh run over another run's checkpoints is refused unless ``overwrite_output_dir`` (which then
removes them). ``--resume_from_checkpoint latest`` takes the newest *complete* checkpoint (one
whose ``trainer_state.json``, written last, exists) and says which incomplete ones it passed over.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from ..data.dataset import VideoR1Dataset
from ..models.loading import ModelLoadError, load_local_model
from .checkpoints import STAGING_DIR
from .config import SELECTION_KEYS, ConfigError, VideoGRPOConfig
from .trainer import VideoGRPOTrainer

RUN_FILE = "videoktr_run.json"
DEFAULT_OUTPUT_DIR = "trainer_output"  # where TrainingArguments writes without an output_dir
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# What a run trains: resuming with any of these changed continues another experiment.
METHOD_KEYS = ("preset", "token_selection", *SELECTION_KEYS, "visual_mode", "temporal_mode", "num_shuffles",
               "loss_aggregation", "use_bias_correction_kl", "mask_kl", "beta", "num_generations",
               "temporal_reward_bonus", "reward_funcs")


class TrainingInterrupted(RuntimeError):
    """Ctrl-C during training; the message says how to resume."""


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path, bool]]:
    """``(step, path, complete)`` of every ``checkpoint-N`` directory, oldest first."""
    found = []
    directory = Path(output_dir)
    if directory.is_dir():
        for path in directory.iterdir():
            match = _CHECKPOINT.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path, (path / "trainer_state.json").is_file()))
    return sorted(found)


def resume_argument(config: VideoGRPOConfig) -> str | None:
    """The checkpoint to resume from: a directory given, or for ``latest`` (``true``, ``last``)
    the newest complete checkpoint of ``output_dir``; None for a fresh run."""
    value = config.resume_from_checkpoint
    if value is None:
        return None
    if str(value).lower() not in ("true", "latest", "last"):
        if not (Path(value) / "trainer_state.json").is_file():
            raise ConfigError(f"resume_from_checkpoint={value!r} is not a complete checkpoint directory "
                              "(no trainer_state.json in it)")
        return str(value)
    found = checkpoints(config.output_dir)
    complete = [path for _, path, done in found if done]
    if not complete:
        raise ConfigError(f"resume_from_checkpoint={value!r}: {config.output_dir} holds no complete checkpoint")
    skipped = [path.name for step, path, done in found if not done and step > int(complete[-1].name.split("-")[1])]
    if skipped:
        print(f"videoktr train: passed over {', '.join(skipped)} (incomplete: no trainer_state.json, the run "
              f"stopped while saving it); resuming from {complete[-1].name}", file=sys.stderr)
    return str(complete[-1])


def run_record(config: VideoGRPOConfig) -> dict[str, Any]:
    """What ``videoktr_run.json`` holds: the model, the dataset, the method's keys, and every key."""
    return {
        "model": str(Path(config.model).resolve()) if config.model else None,
        "dataset": str(Path(config.dataset).resolve()) if config.dataset else None,
        "method": {key: getattr(config, key) for key in METHOD_KEYS},
        "config": config.to_sanitized_dict(),
    }


def check_output_dir(config: VideoGRPOConfig, resuming: bool) -> None:
    """Refuse to mix two runs in one output directory (see the module docstring)."""
    run_file = Path(config.output_dir) / RUN_FILE
    found = checkpoints(config.output_dir)
    if not resuming and found:
        if not config.overwrite_output_dir:
            raise ConfigError(
                f"output_dir {config.output_dir} holds checkpoints of an earlier run ({found[-1][1].name}): resume "
                "it with --resume_from_checkpoint latest, choose another --output_dir, or pass "
                "--overwrite_output_dir true to start over (its checkpoints are then removed)"
            )
        for _, path, _ in found:
            shutil.rmtree(path)
        shutil.rmtree(Path(config.output_dir) / STAGING_DIR, ignore_errors=True)
    if resuming and run_file.is_file() and not config.resume_despite_changes:
        earlier, now = json.loads(run_file.read_text()), json.loads(json.dumps(run_record(config), default=str))
        changed = [key for key in ("model", "dataset") if earlier.get(key) != now[key]]
        changed += [key for key in METHOD_KEYS if earlier.get("method", {}).get(key) != now["method"][key]]
        if changed:
            details = "; ".join(f"{key}: {earlier.get(key, earlier.get('method', {}).get(key))!r} there, "
                                f"{now.get(key, now['method'].get(key))!r} now" for key in changed)
            raise ConfigError(f"{config.output_dir} is a run with other settings ({details}); resume it with its own "
                              "settings, or pass --resume_despite_changes true")


def _write_run_record(config: VideoGRPOConfig) -> None:
    path = Path(config.output_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_record(config), indent=2, default=str) + "\n")


def load_dataset(config: VideoGRPOConfig) -> VideoR1Dataset:
    """The training set, read and validated before anything slow happens."""
    if config.dataset is None:
        raise ConfigError("dataset is required: a Video-R1 format .json or .jsonl file (--dataset FILE; "
                          "`videoktr synth --out DIR --n N` writes one)")
    dataset = VideoR1Dataset(config.dataset, data_root=config.data_root, on_bad_sample=config.on_bad_sample,
                             fps=config.fps, min_frames=config.min_frames, max_frames=config.max_frames)
    if len(dataset) == 0:
        raise ConfigError(f"dataset {config.dataset} has no usable rows; {dataset.summary()}")
    return dataset


def _check_writable(output_dir: str) -> None:
    """Create ``output_dir`` and try a file in it, before the model loads: a run that can
    write no checkpoint should stop at once, saying where."""
    directory = Path(output_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".videoktr-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"output_dir {directory} cannot be written: {error.strerror or error}") from None


def train(config: VideoGRPOConfig):
    """Run a whole training job from a configuration; returns the Trainer's ``TrainOutput``."""
    if config.model is None:
        raise ConfigError("model is required: the local directory of the policy (--model PATH)")
    dataset = load_dataset(config)
    _check_writable(config.output_dir)
    resume = resume_argument(config)
    check_output_dir(config, resuming=resume is not None)
    try:
        model, processor = load_local_model(config.model, bf16=config.bf16)
    except ModelLoadError as error:  # the model path is a configuration key
        raise ConfigError(str(error)) from error
    trainer = VideoGRPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)
    if trainer.is_world_process_zero():
        print(dataset.summary())
        length = (f"{config.max_steps} steps" if config.max_steps > 0
                  else f"{config.num_train_epochs:g} epochs ({len(dataset)} rows each)")
        where = config.output_dir
        if where == DEFAULT_OUTPUT_DIR:
            where += " (no --output_dir given: the transformers default)"
        print(f"training {config.preset or config.token_selection} for {length}; checkpoints, logs and "
              f"{RUN_FILE} in {where}", flush=True)
        print(trainer.rollout_backend.describe(), flush=True)
        _write_run_record(config)
    try:
        output = trainer.train(resume_from_checkpoint=resume)
    except KeyboardInterrupt:
        complete = [path.name for _, path, done in checkpoints(config.output_dir) if done]
        where = f"the last complete checkpoint is {complete[-1]}" if complete else "no checkpoint was saved yet"
        raise TrainingInterrupted(f"interrupted at step {trainer.state.global_step}; {where}: continue with "
                                  "--resume_from_checkpoint latest") from None
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        print(f"saved the trained policy and its processor to {config.output_dir}")
    # Finish the trackers and tear the process group down here: left to interpreter exit, a
    # gloo process group can abort one rank ("terminate called without an active exception")
    # after everything was saved, and the launcher then reports the whole run as failed.
    trainer.accelerator.end_training()
    return output
