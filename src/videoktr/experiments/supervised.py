"""The one supervised training loop the demo's stages share (encoder pre-training, the order
stage, the warm-up on traces): AdamW, an optional learning-rate schedule, gradient clipping, a
progress bar.

Why not ``transformers.Trainer``: each stage is a few hundred steps on a tiny model whose loss
is not a language-modelling loss over a batch (per-token binary targets through a throw-away
head; one colour token; a weighted NLL per row) and whose examples are cached processor outputs
of one prompt each. The Trainer's data pipeline, checkpointing and logging would be most of the
code and none of the use; this loop is the part the three stages had each written again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch
from transformers import get_scheduler

__all__ = ["SCHEDULES", "supervised_loop"]

Item = TypeVar("Item")
SCHEDULES = ("constant", "linear")


def supervised_loop(
    model: torch.nn.Module,
    parameters: Iterable[torch.nn.Parameter],
    items: Iterator[Item],
    loss_fn: Callable[[Item, int], torch.Tensor],
    steps: int,
    items_per_step: int,
    learning_rate: float,
    *,
    schedule: str = "constant",
    warmup_ratio: float = 0.0,
    max_grad_norm: float | None = None,
    description: str = "training",
    progress: bool = True,
    loss_digits: int = 3,
) -> list[float]:
    """Train ``parameters`` for ``steps`` AdamW steps; returns each step's loss.

    Each step takes ``items_per_step`` items from ``items`` and, one at a time, backpropagates
    ``loss_fn(item, step) / items_per_step`` (one backward per item: the items are prompts of
    different lengths); the step's loss is the sum of those. Then the gradients are clipped to
    ``max_grad_norm`` (``None``: no clipping), the optimizer steps and the learning rate follows
    ``schedule``: ``constant``, or transformers' ``linear`` (a ``warmup_ratio`` ramp, then a
    linear decay to zero), as ``transformers.Trainer`` does by default. The model is in train
    mode during the loop and in eval mode after.
    """
    if steps < 1 or items_per_step < 1:
        raise ValueError(f"steps and items per step must be positive, got {steps} and {items_per_step}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    parameters = list(parameters)
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate)
    scheduler = None
    if schedule == "linear":
        scheduler = get_scheduler("linear", optimizer, num_warmup_steps=int(warmup_ratio * steps), num_training_steps=steps)
    losses: list[float] = []
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=description, unit="step")
    model.train()
    for step in iterator:
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _ in range(items_per_step):
            loss = loss_fn(next(items), step) / items_per_step
            loss.backward()
            step_loss += loss.item()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(step_loss)
        if progress:
            iterator.set_postfix(loss=f"{step_loss:.{loss_digits}f}")
    model.eval()
    return losses
