"""Order pre-training: it trains only the language model, on the colour of the first shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from videoktr.data.dataset import VideoR1Dataset
from videoktr.experiments.order import (
    FIRST_APPEARANCE,
    first_appearance_accuracy,
    pretrain_first_appearance,
)
from videoktr.models.tiny import CORPUS, build_tiny_model, build_tokenizer
from videoktr.synthetic import generate_dataset, world_corpus


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("order_world")
    generate_dataset(out, 30, 5, test_fraction=0.2, fps=4, progress=False)
    return out


def _policy():
    tokenizer = build_tokenizer(world_corpus() + list(CORPUS), vocab_size=400)
    return build_tiny_model("qwen2_5_vl", seed=0, tokenizer=tokenizer)


def _dataset(path):
    return VideoR1Dataset(path, fps=4, min_frames=4, max_frames=16)


def _stating_rows(path) -> int:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sum(FIRST_APPEARANCE in row["trace"] for row in rows)


def _first_colour_nll(model, processor, dataset) -> float:
    """Mean negative log-probability of the first shape's colour right after "The first shape to
    appear is", the row's own trace teacher-forced up to there, computed here from scratch."""
    from videoktr.data.prompts import build_prompt_inputs
    from videoktr.models import get_adapter
    from videoktr.synthetic import Scene

    adapter, tokenizer = get_adapter(model), processor.tokenizer
    losses = []
    with torch.no_grad():
        for index in range(len(dataset)):
            row = dataset[index].row
            if FIRST_APPEARANCE not in row["trace"]:
                continue
            decoded = dataset.decode(index)
            prompt = adapter.prepare(build_prompt_inputs(processor, decoded.sample, decoded.media))
            opening = row["trace"][: row["trace"].index(FIRST_APPEARANCE) + len(FIRST_APPEARANCE)]
            first = min(Scene.from_dict(row["scene"]).shapes, key=lambda shape: shape.appear)
            ids = tokenizer.encode(opening, add_special_tokens=False)
            colour = tokenizer.encode(f" {first.colour}", add_special_tokens=False)
            logps = adapter.policy_logps(model, prompt, torch.tensor([ids + colour]), chunk_size=None)
            losses.append(-float(logps[0, len(ids)]))
    return float(np.mean(losses))


def test_order_pretraining_trains_the_language_model_on_the_first_colour(world):
    train = _dataset(world / "train.jsonl")
    rows = _stating_rows(world / "train.jsonl")
    assert rows >= 3
    model, processor = _policy()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    expected_first_loss = _first_colour_nll(model, processor, train)
    # One step's prompts are every stating row once, so its loss is the mean above: the stage
    # trains on exactly that token.
    result = pretrain_first_appearance(model, processor, train, steps=20, learning_rate=3e-3, prompts_per_step=rows,
                                       eval_dataset=_dataset(world / "test.jsonl"), progress=False)
    assert result.losses[0] == pytest.approx(expected_first_loss, rel=1e-4)
    assert np.mean(result.losses[-5:]) < 0.5 * result.losses[0]
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and not any(".visual." in f".{name}" for name in changed)  # the encoder stays frozen
    assert all(p.requires_grad for p in model.parameters())  # ... and trainable again after
    assert result.rows == rows and len(result.losses) == 20
    accuracy, counted = first_appearance_accuracy(model, processor, train)
    assert counted == rows and 0.0 <= accuracy <= 1.0
    assert result.heldout_rows == _stating_rows(world / "test.jsonl")
    assert result.heldout_accuracy is None or 0.0 <= result.heldout_accuracy <= 1.0


def test_rows_that_never_state_the_first_colour_are_refused(world, tmp_path):
    rows = [json.loads(line) for line in (world / "train.jsonl").read_text().splitlines()]
    kept = [row for row in rows if FIRST_APPEARANCE not in row["trace"]]
    path = world / "no_order.jsonl"  # beside the videos, whose paths are relative
    path.write_text("\n".join(json.dumps(row) for row in kept) + "\n")
    model, processor = _policy()
    assert first_appearance_accuracy(model, processor, _dataset(path)) == (None, 0)
    with pytest.raises(ValueError, match=FIRST_APPEARANCE):
        pretrain_first_appearance(model, processor, _dataset(path), steps=2, progress=False)
    with pytest.raises(ValueError, match="steps and prompts_per_step must be positive"):
        pretrain_first_appearance(model, processor, _dataset(world / "train.jsonl"), steps=0, progress=False)


def test_first_colour_weights_mark_the_colour_after_the_opening(world):
    from videoktr.experiments.order import first_colour_weights
    from videoktr.synthetic import Scene

    _, processor = _policy()
    tokenizer = processor.tokenizer
    weights = first_colour_weights(tokenizer, 10.0)
    checked = 0
    for sample in _dataset(world / "train.jsonl"):
        target = tokenizer.encode(sample.row["trace"], add_special_tokens=False)
        values = weights(sample, target)
        if FIRST_APPEARANCE not in sample.row["trace"]:
            assert values is None
            continue
        heavy = [i for i, value in enumerate(values) if value != 1.0]
        first = min(Scene.from_dict(sample.row["scene"]).shapes, key=lambda shape: shape.appear)
        assert len(heavy) == 1 and values[heavy[0]] == 10.0
        assert tokenizer.decode([target[heavy[0]]]).strip() == first.colour
        checked += 1
    assert checked >= 3
