"""The supervised loop the demo's stages share: gradient accumulation over the items of a step,
the returned losses, the model's mode, and its argument checks."""

import itertools

import pytest
import torch

from videoktr.experiments.supervised import supervised_loop


def regression_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(8, 3, generator=generator)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    items = [(inputs[i], targets[i]) for i in range(8)]

    def squared_error(item, step):
        x, y = item
        return (model(x).squeeze() - y) ** 2

    return model, items, squared_error


def test_the_loss_falls_and_the_model_ends_in_eval_mode():
    model, items, loss_fn = regression_problem()
    losses = supervised_loop(model, model.parameters(), itertools.cycle(items), loss_fn, steps=60, items_per_step=4,
                             learning_rate=0.05, progress=False)
    assert len(losses) == 60
    assert sum(losses[-5:]) < 0.1 * sum(losses[:5])
    assert not model.training


def test_one_step_is_adamw_on_the_mean_loss_of_its_items():
    model, items, loss_fn = regression_problem()
    reference, _, _ = regression_problem()
    reference.load_state_dict(model.state_dict())
    losses = supervised_loop(model, model.parameters(), iter(items), loss_fn, steps=1, items_per_step=3,
                             learning_rate=0.1, progress=False)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=0.1)
    mean = sum((reference(x).squeeze() - y) ** 2 for x, y in items[:3]) / 3
    mean.backward()
    optimizer.step()
    assert losses[0] == pytest.approx(mean.item(), rel=1e-6)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-7)


def test_arguments_are_checked():
    model, items, loss_fn = regression_problem()
    with pytest.raises(ValueError, match="must be positive"):
        supervised_loop(model, model.parameters(), iter(items), loss_fn, steps=0, items_per_step=1, learning_rate=0.1)
    with pytest.raises(ValueError, match="schedule must be one of constant, linear"):
        supervised_loop(model, model.parameters(), iter(items), loss_fn, steps=1, items_per_step=1,
                        learning_rate=0.1, schedule="cosine")
