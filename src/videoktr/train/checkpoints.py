"""How the trainer writes checkpoints and reads them back.

Writing: on one process a checkpoint is written under ``output_dir/.staging/`` and renamed into
place when complete, so a run killed mid-save leaves no ``checkpoint-N`` that looks resumable
(``train.run.resume_argument`` also passes over a checkpoint without ``trainer_state.json``,
which is what several processes can leave). Reading: through the model class's
``from_pretrained``, which maps transformers 5's checkpoint-format keys back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from transformers.trainer_utils import rotate_checkpoints

__all__ = ["STAGING_DIR", "CheckpointMixin"]

STAGING_DIR = ".staging"
"""Where a checkpoint is written before it is renamed into ``output_dir`` (one process)."""


class CheckpointMixin:
    """Checkpoint writing and loading for a ``transformers.Trainer`` subclass (listed before it)."""

    def _save_checkpoint(self, model, trial) -> None:
        """Write ``checkpoint-N`` under ``.staging/`` and rename it into place once complete, so a
        run killed mid-save leaves no ``checkpoint-N`` that looks resumable.

        One process only: under DDP, DeepSpeed or FSDP several ranks write parts of one folder,
        and the rename would need them all; there ``--resume_from_checkpoint latest`` passes over
        a checkpoint without ``trainer_state.json`` (written last) instead.
        """
        if self.accelerator.num_processes > 1 or trial is not None:
            super()._save_checkpoint(model, trial)
            return
        run_dir = Path(self._get_output_dir(trial=trial))
        staging_root = run_dir / STAGING_DIR
        name = f"checkpoint-{self.state.global_step}"
        shutil.rmtree(staging_root / name, ignore_errors=True)  # left by a killed run
        self.args.output_dir = str(staging_root)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.output_dir = str(run_dir)
        final = run_dir / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging_root / name, final)
        rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                           best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Load the checkpoint's weights through ``from_pretrained``, strictly.

        transformers 5 writes Qwen-VL checkpoints with their checkpoint-format keys
        (``visual.*`` for ``model.visual.*``), which the Trainer's raw ``load_state_dict``
        does not map back: it would warn and resume from the *initial* weights. The model
        class's ``from_pretrained`` applies its own key conversion; ``strict=True`` then makes
        any remaining mismatch an error. DeepSpeed and FSDP checkpoints keep their own loaders.
        """
        model = model if model is not None else self.model
        directory = Path(resume_from_checkpoint)
        has_weights = (directory / "model.safetensors").is_file() or (directory / "model.safetensors.index.json").is_file()
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or not has_weights:
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        reloaded = type(model).from_pretrained(directory, dtype=model.dtype, local_files_only=True)
        model.load_state_dict(reloaded.state_dict(), strict=True)
        del reloaded
