"""No non-finite number reaches the weights: an optimizer step whose loss or gradient is not
finite is skipped, on every process alike, and counted.

Why: one infinite reward or an overflowing KL term makes the gradient NaN; the optimizer would
write NaN into every weight and the next rollout would die in sampling. Skipping costs one step.

The check runs as the optimizer's step pre-hook, after gradient accumulation (and, under DDP,
after the gradients were averaged over processes). A process that saw a non-finite loss marks
the step; the processes agree by a sum over them, so all skip or none does and the replicas stay
equal. Skipping sets every gradient to None, which ``torch.optim`` optimizers pass over.
"""

from __future__ import annotations

import torch

__all__ = ["NonFiniteUpdateGuard"]


class NonFiniteUpdateGuard:
    """Attach with ``optimizer.register_step_pre_hook(guard)``; report losses with
    ``guard.record_loss(loss)``. ``skipped`` counts the steps skipped so far."""

    def __init__(self, accelerator) -> None:
        self.accelerator = accelerator
        self.skipped = 0
        self._bad_loss = False

    def record_loss(self, loss: torch.Tensor) -> None:
        """Note a micro-batch loss; a non-finite one marks the coming optimizer step."""
        if not bool(torch.isfinite(loss.detach()).all()):
            self._bad_loss = True

    def _gradients_finite(self, optimizer: torch.optim.Optimizer) -> bool:
        norms = [torch.linalg.vector_norm(p.grad.detach().float()) for group in optimizer.param_groups
                 for p in group["params"] if p.grad is not None]
        return not norms or bool(torch.isfinite(torch.stack(norms).sum()))

    def __call__(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        bad = self._bad_loss or not self._gradients_finite(optimizer)
        self._bad_loss = False
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([float(bad)], device=self.accelerator.device)
            bad = bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)
        if bad:
            optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
