"""What the multi-process test workers share: a trainer built from the command line as
`videoktr train` builds it, and the end every rank goes through together."""

import json
import os
import sys
import warnings

import torch.distributed as dist

from videoktr.data.dataset import VideoR1Dataset
from videoktr.models import load_local_model
from videoktr.train import load_config
from videoktr.train.trainer import VideoGRPOTrainer


def trainer_from_argv():
    """``(config, trainer)`` from the training flags in ``sys.argv[1:]``."""
    warnings.simplefilter("ignore")
    config = load_config(sys.argv[1:])
    model, processor = load_local_model(config.model)
    dataset = VideoR1Dataset(config.dataset, fps=config.fps, min_frames=config.min_frames, max_frames=config.max_frames)
    return config, VideoGRPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)


def finish(trainer, report: dict | None) -> None:
    """Rank 0 writes ``report`` as JSON to VIDEOKTR_DDP_REPORT; then every rank leaves together,
    tears the process group down (as videoktr train does) and exits without the interpreter's
    teardown: left to it, gloo aborted a rank now and then after the report was written, even
    with the group down ("terminate called without an active exception", a native thread still
    joinable; benchmarks/distributed_check.py and tests/models/fsdp_worker.py leave the same way)."""
    if report is not None:
        with open(os.environ["VIDEOKTR_DDP_REPORT"], "w") as handle:
            json.dump(report, handle)
    dist.barrier()
    trainer.accelerator.end_training()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
