"""Teach the tiny policy which shape appeared first: the order-reading a pretrained VLM brings.

Why. A real Qwen-VL starts RL already able to say what happened first in a clip. This stage
gives the tiny policy that skill on a dense, exactly known target, as
``experiments.encoder`` gives it colours and shapes. The demo leaves it off by default
(``DemoConfig.order_pretrain_steps = 0``): the warm-up with that word weighted
(``first_colour_weights``) teaches it as well (``docs/demo.md`` has the measurements).

The target. Every trace about a queue scene (``appeared_first``, ``appeared_after``,
``colour_of_first``: shapes that appear one after another and leave in the same order) states
``"The first shape to appear is <colour>."`` before anything else about the order. The stage
teacher-forces the row's own trace up to that colour and trains on the colour token alone: no
single frame and no unordered set of frames tells it (``videoktr.synthetic.world``), so only a
policy that reads the order gets it right. The vision encoder is frozen: it sees one temporal
patch at a time and has nothing to learn about order; the language model learns to find the
earliest shape among the video tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data.cycle import CachedShuffleCycle
from ..data.dataset import VideoR1Dataset
from ..data.prompts import build_prompt_inputs
from ..models import get_adapter
from ..synthetic.world import COLOURS, Scene
from .supervised import supervised_loop
from .warmup import frozen_vision_encoder

__all__ = ["FIRST_APPEARANCE", "OrderPretrainResult", "first_appearance_accuracy", "first_colour_weights",
           "pretrain_first_appearance"]

FIRST_APPEARANCE = "The first shape to appear is"  # the sentence every queue trace opens its order with


@dataclass
class OrderPretrainResult:
    """Per-step loss (NLL of the colour token), the queue rows trained on, and, when an
    evaluation split was given, the share of its queue rows whose first colour the policy ranks
    above the other three after the stage (chance: 25%)."""

    losses: list[float] = field(default_factory=list)
    rows: int = 0
    heldout_accuracy: float | None = None
    heldout_rows: int = 0


def _states_first_appearance(row: dict) -> bool:
    trace = row.get("trace")
    return isinstance(trace, str) and FIRST_APPEARANCE in trace and isinstance(row.get("scene"), dict)


def _first_appearance_item(dataset: VideoR1Dataset, index: int, processor, adapter):
    """``(prompt, target ids [1, L], colour position, colour index)`` for a row whose trace
    states the first shape's colour; ``None`` for any other row or an unreadable clip."""
    row = dataset[index].row
    if not _states_first_appearance(row):
        return None
    trace, scene = row["trace"], row["scene"]
    decoded = dataset.decode(index)
    if decoded is None:
        return None
    shapes = Scene.from_dict(scene).shapes
    first = min(shapes, key=lambda shape: shape.appear)
    tokenizer = processor.tokenizer
    prefix = tokenizer.encode(trace[: trace.index(FIRST_APPEARANCE) + len(FIRST_APPEARANCE)], add_special_tokens=False)
    target = prefix + tokenizer.encode(f" {first.colour}.", add_special_tokens=False)
    prompt = adapter.prepare(build_prompt_inputs(processor, decoded.sample, decoded.media))
    return prompt, torch.tensor([target], device=adapter.device), len(prefix), list(COLOURS).index(first.colour)


def first_colour_weights(tokenizer, weight: float):
    """``token_weights`` for ``supervised_warmup``: ``weight`` on the colour token after
    ``FIRST_APPEARANCE`` in a trace that states it, 1 elsewhere (None for other rows). Why: in
    a whole trace that token is one of about 45, and a warm-up at the usual learning rate wears
    away what an order stage taught (``docs/demo.md``)."""

    def weights(sample, target: list[int]) -> list[float] | None:
        trace = sample.row.get("trace")
        if not isinstance(trace, str) or FIRST_APPEARANCE not in trace:
            return None
        prefix = tokenizer.encode(trace[: trace.index(FIRST_APPEARANCE) + len(FIRST_APPEARANCE)], add_special_tokens=False)
        if len(target) <= len(prefix) or target[: len(prefix)] != prefix:
            return None  # the trace is not the warm-up's target, or tokenizes differently
        values = [1.0] * len(target)
        values[len(prefix)] = float(weight)
        return values

    return weights


def _colour_token_ids(processor) -> list[int]:
    ids = [processor.tokenizer.encode(f" {colour}", add_special_tokens=False) for colour in COLOURS]
    if any(len(pieces) != 1 for pieces in ids):
        raise ValueError("the tokenizer must encode each colour word (with its leading space) as one token")
    return [pieces[0] for pieces in ids]


@torch.no_grad()
def first_appearance_accuracy(model: torch.nn.Module, processor, dataset: VideoR1Dataset) -> tuple[float | None, int]:
    """``(accuracy, rows)``: over the rows whose trace states the first shape's colour, the
    share where the policy ranks the true colour above the other three (teacher-forced up to
    it). ``(None, 0)`` without such rows."""
    adapter = get_adapter(model)
    colour_ids = torch.tensor(_colour_token_ids(processor), device=adapter.device)
    was_training = model.training
    model.eval()
    right = rows = 0
    for index in range(len(dataset)):
        item = _first_appearance_item(dataset, index, processor, adapter)
        if item is None:
            continue
        prompt, target, position, colour = item
        candidates = target[:, : position + 1].repeat(len(colour_ids), 1)
        candidates[:, position] = colour_ids
        logps = adapter.policy_logps(model, prompt, candidates, chunk_size=None)[:, position]
        right += int(int(logps.argmax()) == colour)
        rows += 1
    model.train(was_training)
    return (right / rows if rows else None), rows


def pretrain_first_appearance(
    model: torch.nn.Module,
    processor,
    dataset: VideoR1Dataset,
    steps: int = 300,
    learning_rate: float = 5e-4,
    prompts_per_step: int = 8,
    seed: int = 0,
    eval_dataset: VideoR1Dataset | None = None,
    progress: bool = True,
) -> OrderPretrainResult:
    """Train the language model (the vision encoder frozen) to name the colour of the shape
    that appeared first, on the queue rows of ``dataset``, with AdamW and gradients clipped to
    1. ``eval_dataset``: measure ``first_appearance_accuracy`` on it afterwards."""
    if steps < 1 or prompts_per_step < 1:
        raise ValueError(f"steps and prompts_per_step must be positive, got {steps} and {prompts_per_step}")
    adapter = get_adapter(model)
    _colour_token_ids(processor)  # fail early on a tokenizer that splits colour words
    result = OrderPretrainResult(rows=sum(_states_first_appearance(dataset[i].row) for i in range(len(dataset))))
    if not result.rows:
        raise ValueError(f"no row of {dataset.dataset_file} has a trace stating {FIRST_APPEARANCE!r} and a scene")
    items = CachedShuffleCycle(
        len(dataset),
        lambda index: _first_appearance_item(dataset, index, processor, adapter),
        seed,
        f"no row of {dataset.dataset_file} has a readable clip and a trace stating {FIRST_APPEARANCE!r}",
    )

    def colour_nll(item, step: int) -> torch.Tensor:
        prompt, target, position, _ = item
        return -adapter.policy_logps(model, prompt, target, chunk_size=None)[0, position]

    with frozen_vision_encoder(model):
        result.losses = supervised_loop(
            model, [p for p in model.parameters() if p.requires_grad], items, colour_nll, steps, prompts_per_step,
            learning_rate, max_grad_norm=1.0, description="order pre-training", progress=progress,
        )
    if eval_dataset is not None:
        result.heldout_accuracy, result.heldout_rows = first_appearance_accuracy(model, processor, eval_dataset)
    return result
