"""Run by tests/train/test_distributed.py under `accelerate launch` with 2 CPU processes.

One optimizer step with ``loss_type dapo`` and two accumulated micro-batches per process, each
of another token count. Rank 0 gathers every rank's rollouts, recomputes the gradient of one
token mean over all of them at the initial weights, and writes its relative difference from the
gradient the optimizer received (averaged over processes by DDP) as JSON to VIDEOKTR_DDP_REPORT.
"""

import torch.distributed as dist

from tests.train.step_gradient import StepRecorder, largest_relative_difference, whole_step_gradient
from tests.train.workers import finish, trainer_from_argv


def main() -> None:
    _, trainer = trainer_from_argv()
    recorder = StepRecorder(trainer, lengths=[[3, 12], [7, 5]][dist.get_rank()])
    trainer.train()
    rollouts = [rollout for batch in recorder.rollouts for rollout in batch]
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, rollouts)
    report = None
    if dist.get_rank() == 0:
        every_rollout = [rollout for rank in everyone for rollout in rank]
        trainer.args.loss_aggregation = "token_mean"
        reference = whole_step_gradient(trainer, recorder.initial_state, every_rollout)
        report = {
            "world_size": dist.get_world_size(),
            "tokens_per_rank": [[int(r.completion_mask.sum()) for r in rank] for rank in everyone],
            "relative_difference": largest_relative_difference(recorder.gradient, reference),
        }
    finish(trainer, report)


if __name__ == "__main__":
    main()
