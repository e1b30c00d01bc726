"""The training recipe behind ``videoktr train``: load a local model and dataset, train, save."""

from __future__ import annotations

from pathlib import Path

from ..data.dataset import VideoR1Dataset
from ..models.loading import ModelLoadError, load_local_model
from .config import ConfigError, VideoGRPOConfig
from .trainer import VideoGRPOTrainer


def _resume_argument(config: VideoGRPOConfig) -> str | bool | None:
    value = config.resume_from_checkpoint
    if value is None:
        return None
    if str(value).lower() in ("true", "latest", "last"):
        return True  # the Trainer picks the newest checkpoint in output_dir
    if not Path(value).is_dir():
        raise ConfigError(f"resume_from_checkpoint={value!r} is not a checkpoint directory")
    return value


def train(config: VideoGRPOConfig):
    """Run a whole training job from a configuration; returns the Trainer's ``TrainOutput``."""
    if config.model is None:
        raise ConfigError("model is required: the local directory of the policy (--model PATH)")
    if config.dataset is None:
        raise ConfigError("dataset is required: a Video-R1 format .json or .jsonl file (--dataset FILE)")
    try:
        model, processor = load_local_model(config.model, bf16=config.bf16)
    except ModelLoadError as error:  # the model path is a configuration key
        raise ConfigError(str(error)) from error
    dataset = VideoR1Dataset(
        config.dataset,
        data_root=config.data_root,
        on_bad_sample=config.on_bad_sample,
        fps=config.fps,
        min_frames=config.min_frames,
        max_frames=config.max_frames,
    )
    if len(dataset) == 0:
        raise ConfigError(f"dataset {config.dataset} has no usable rows; {dataset.summary()}")
    trainer = VideoGRPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)
    output = trainer.train(resume_from_checkpoint=_resume_argument(config))
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        print(dataset.summary())
        print(f"saved the trained policy and its processor to {config.output_dir}")
    # Finish the trackers and tear the process group down here: left to interpreter exit, a
    # gloo process group can abort one rank ("terminate called without an active exception")
    # after everything was saved, and the launcher then reports the whole run as failed.
    trainer.accelerator.end_training()
    return output
