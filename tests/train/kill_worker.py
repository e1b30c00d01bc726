"""Run by tests/train/test_run.py as a subprocess: ``videoktr train`` that stalls inside the save
of its second checkpoint (the weights written, the optimizer state and ``trainer_state.json``
not yet), writes the folder it is saving to VIDEOKTR_SAVE_MARKER, and waits there to be killed."""

import os
import sys
import time
import warnings
from pathlib import Path

from transformers import Trainer

from videoktr.cli import main

original_save = Trainer._save_optimizer_and_scheduler


def stalling_save(self, output_dir):
    if self.state.global_step == 2:
        Path(os.environ["VIDEOKTR_SAVE_MARKER"]).write_text(str(output_dir))
        time.sleep(600)
    return original_save(self, output_dir)


Trainer._save_optimizer_and_scheduler = stalling_save

if __name__ == "__main__":
    warnings.simplefilter("ignore")
    sys.exit(main(["train", *sys.argv[1:]]))
