"""Run by tests/train/test_distributed.py under `accelerate launch` with 2 CPU processes.

Trains with the flags it is given, then checks what only a multi-process run can show: every
rank holds the same weights afterwards (gradients were all-reduced), and each rank saw its own
prompts. Rank 0 writes the findings as JSON to the path in VIDEOKTR_DDP_REPORT.
"""

import torch
import torch.distributed as dist

from tests.train.workers import finish, trainer_from_argv


def main() -> None:
    config, trainer = trainer_from_argv()
    seen = []
    original = trainer._rollouts

    def recording_rollouts(samples, first_slot):
        rollouts = original(samples, first_slot)
        for rollout in rollouts:
            seen.append(rollout.sample.location)
            assert rollout.completion_ids.shape[0] == config.num_generations  # a prompt's G stay here
        return rollouts

    trainer._rollouts = recording_rollouts
    initial = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer.train()

    weights = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    gathered = [torch.zeros_like(weights) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, weights)
    prompts = [None] * dist.get_world_size()
    dist.all_gather_object(prompts, seen)
    report = None
    if dist.get_rank() == 0:
        report = {
            "world_size": dist.get_world_size(),
            "backend": dist.get_backend(),
            "max_weight_difference": max((g - gathered[0]).abs().max().item() for g in gathered),
            "max_weight_change": (weights - initial).abs().max().item(),
            "prompts_per_rank": prompts,
            "global_step": trainer.state.global_step,
            "log_history": trainer.state.log_history,
        }
    finish(trainer, report)


if __name__ == "__main__":
    main()
