"""Record one optimizer step of a trainer (its rollouts and the gradient the optimizer receives)
and recompute that gradient from the rollouts with the whole step as one batch: how the tests
check that an aggregation's normaliser spans micro-batches and processes as it should."""

from __future__ import annotations

import copy

import torch


class StepRecorder:
    """Wraps ``trainer._prepare_inputs`` and the optimizer's step pre-hook. Every rollout gets
    fixed, nonzero advantages (the test must not hang on sampled rewards) and, on micro-batch
    ``k``, completions cut to ``lengths[k]`` tokens, so micro-batches hold different token counts.
    """

    def __init__(self, trainer, lengths: list[int]):
        self.trainer = trainer
        self.lengths = lengths
        self.rollouts: list = []
        self.gradient: list[torch.Tensor] | None = None
        self.initial_state = copy.deepcopy(trainer.model.state_dict())
        original_prepare = trainer._prepare_inputs

        def prepare(samples):
            rollouts = original_prepare(samples)
            length = self.lengths[len(self.rollouts) % len(self.lengths)]
            for rollout in rollouts:
                rollout.advantages = torch.linspace(1.0, -1.0, rollout.completion_ids.shape[0])
                rollout.completion_mask[:, length:] = False
            self.rollouts.append(rollouts)
            return rollouts

        trainer._prepare_inputs = prepare
        original_create = trainer.create_optimizer

        def capture(optimizer, args, kwargs):
            if self.gradient is None:
                self.gradient = [p.grad.detach().clone() for p in trainer.model.parameters() if p.grad is not None]

        def create_optimizer(model=None):
            optimizer = original_create(model)
            if not getattr(optimizer, "_step_recorded", False):
                optimizer.register_step_pre_hook(capture)
                optimizer._step_recorded = True
            return optimizer

        trainer.create_optimizer = create_optimizer


def whole_step_gradient(trainer, initial_state, rollouts: list) -> list[torch.Tensor]:
    """The gradient of ``trainer.compute_loss`` over all ``rollouts`` at once, at the initial weights."""
    model = trainer.model
    model.load_state_dict(initial_state)
    model.zero_grad(set_to_none=True)
    model.train()
    trainer.compute_loss(model, rollouts).backward()
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def largest_relative_difference(first: list[torch.Tensor], second: list[torch.Tensor]) -> float:
    assert len(first) == len(second)
    flat_first, flat_second = torch.cat([g.flatten() for g in first]), torch.cat([g.flatten() for g in second])
    return ((flat_first - flat_second).norm() / flat_second.norm()).item()
