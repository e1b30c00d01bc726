import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from videoktr import grpo_loss, select_key_tokens
from videoktr.core import AGGREGATIONS, agg_loss, aggregation_normaliser

from .reference import grpo_loss_reference

# What token_sum_norm and token_mean_global need beside the batch (any valid values).
AGG = {"max_completion_length": 8, "global_normaliser": 13.0}


def make_batch(seed: int, rows: int = 4, length: int = 6, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(rows, length, generator=gen, dtype=dtype) * 3).requires_grad_()
    old = logps.detach() + torch.randn(rows, length, generator=gen, dtype=dtype) * 0.3
    ref = logps.detach() + torch.randn(rows, length, generator=gen, dtype=dtype) * 0.3
    advantages = torch.randn(rows, generator=gen, dtype=dtype)
    lengths = torch.randint(1, length + 1, (rows,), generator=gen)
    mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    return logps, old, ref, advantages, mask, gen


# ---------------------------------------------------------------- hand-computed


def test_hand_computed_clipping_and_each_aggregation():
    # Row 0, A = +1: rho = (1.5, 1.0, 0.5); clip [0.8, 1.2] -> per token -min(rho, clip(rho)) = (-1.2, -1.0, -0.5)
    # Row 1, A = -1: rho = (1.5, 0.5, pad);                  -> -min(-rho, -clip(rho))      = (1.5, 0.8)
    old = torch.zeros(2, 3)
    logps = torch.log(torch.tensor([[1.5, 1.0, 0.5], [1.5, 0.5, 1.0]])).requires_grad_()
    advantages = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    weights = torch.tensor([[True, False, True], [False, True, False]])
    kwargs = dict(token_weights=weights, epsilon_low=0.2, epsilon_high=0.2)

    def loss(aggregation):
        return grpo_loss(logps, old, advantages, mask, aggregation=aggregation, **kwargs)[0].item()

    # selected values: row 0 -> -1.2 and -0.5; row 1 -> 0.8
    assert loss("seq_mean") == pytest.approx(((-1.2 - 0.5) / 3 + 0.8 / 2) / 2)
    assert loss("seq_mean_selected") == pytest.approx(((-1.2 - 0.5) / 2 + 0.8 / 1) / 2)
    assert loss("token_mean") == pytest.approx((-1.2 - 0.5 + 0.8) / 5)
    assert loss("token_mean_selected") == pytest.approx((-1.2 - 0.5 + 0.8) / 3)

    _, metrics = grpo_loss(logps, old, advantages, mask, **kwargs)
    # clipped among selected: row 0 t0 (rho 1.5 > 1.2, A > 0); row 1 t1 (rho 0.5 < 0.8, A < 0)
    assert metrics["clip_fraction"].item() == pytest.approx(2 / 3)
    assert metrics["clip_fraction_high"].item() == pytest.approx(1 / 3)
    assert metrics["clip_fraction_low"].item() == pytest.approx(1 / 3)
    assert metrics["selected_fraction"].item() == pytest.approx(3 / 5)
    assert metrics["num_completion_tokens"].item() == 5
    assert metrics["num_selected_tokens"].item() == 3
    assert metrics["num_unselected_tokens"].item() == 2
    assert metrics["kl"].item() == 0.0


def test_hand_computed_kl_masked_and_unmasked():
    logps = torch.zeros(1, 2, requires_grad=True)
    ref = torch.tensor([[math.log(2.0), 0.0]])  # k3: 2 - ln2 - 1 and 0
    mask = torch.ones(1, 2, dtype=torch.bool)
    weights = torch.tensor([[False, True]])
    k3 = 2 - math.log(2) - 1
    kwargs = dict(ref_logps=ref, beta=0.5, token_weights=weights)
    masked, metrics = grpo_loss(logps, logps.detach(), torch.zeros(1), mask, **kwargs)
    assert masked.item() == pytest.approx(0.0)
    unmasked, _ = grpo_loss(logps, logps.detach(), torch.zeros(1), mask, mask_kl=False, **kwargs)
    assert unmasked.item() == pytest.approx(0.5 * k3 / 2)
    assert metrics["kl"].item() == pytest.approx(k3 / 2)


# ---------------------------------------------------------------- against the re-derivation


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from(AGGREGATIONS),
    st.sampled_from(["none", "mask", "soft"]),
    st.sampled_from([0.0, 0.04]),
    st.booleans(),
    st.booleans(),
)
def test_loss_equals_plain_rederivation(seed, aggregation, weight_kind, beta, mask_kl, token_advantages):
    logps, old, ref, advantages, mask, gen = make_batch(seed)
    if token_advantages:
        advantages = torch.randn(logps.shape, generator=gen, dtype=logps.dtype)
    weights = {
        "none": None,
        "mask": torch.rand(logps.shape, generator=gen) < 0.3,
        "soft": torch.rand(logps.shape, generator=gen, dtype=logps.dtype),
    }[weight_kind]
    loss, _ = grpo_loss(
        logps, old, advantages, mask, token_weights=weights, ref_logps=ref, beta=beta,
        epsilon_low=0.2, epsilon_high=0.28, aggregation=aggregation, mask_kl=mask_kl, **AGG,
    )
    expected = grpo_loss_reference(logps, old, advantages, mask, weights, ref, beta, 0.2, 0.28, aggregation, mask_kl,
                                   **AGG)
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_full_mask_equals_vanilla_grpo():
    logps, old, ref, advantages, mask, _ = make_batch(5)
    everything = select_key_tokens({"entropy": torch.rand(logps.shape)}, mask, ratio=1.0, scope="batch")
    for aggregation in AGGREGATIONS:
        vanilla, _ = grpo_loss(logps, old, advantages, mask, ref_logps=ref, beta=0.04, aggregation=aggregation, **AGG)
        ktr, _ = grpo_loss(logps, old, advantages, mask, token_weights=everything, ref_logps=ref, beta=0.04,
                           aggregation=aggregation, **AGG)
        assert torch.equal(vanilla, ktr)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_gradients_reach_only_selected_tokens(aggregation):
    logps, old, ref, advantages, mask, gen = make_batch(11, rows=6, length=8)
    weights = (torch.rand(logps.shape, generator=gen) < 0.4) & mask
    loss, _ = grpo_loss(logps, old, advantages, mask, token_weights=weights, ref_logps=ref, beta=0.1,
                        aggregation=aggregation, **AGG)
    loss.backward()
    grad = logps.grad
    assert (grad[~weights] == 0).all()
    # a selected token gets a gradient unless its policy term is clipped flat (KL keeps it alive)
    assert (grad[weights] != 0).all()


def test_unmasked_kl_sends_gradient_to_every_completion_token():
    logps, old, ref, advantages, mask, _ = make_batch(12)
    weights = torch.zeros_like(mask)
    loss, _ = grpo_loss(logps, old, advantages, mask, token_weights=weights, ref_logps=ref, beta=0.1, mask_kl=False)
    loss.backward()
    assert (logps.grad[mask] != 0).all() and (logps.grad[~mask] == 0).all()


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_nothing_selected_gives_zero_loss_in_the_graph(aggregation):
    logps, old, ref, advantages, mask, _ = make_batch(13)
    nothing = torch.zeros_like(mask)
    loss, metrics = grpo_loss(logps, old, advantages, mask, token_weights=nothing, ref_logps=ref, beta=0.04,
                              aggregation=aggregation, **AGG)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.isfinite(logps.grad).all() and (logps.grad == 0).all()
    assert all(torch.isfinite(value) for value in metrics.values())
    assert metrics["selected_fraction"].item() == 0.0


def test_empty_completions_do_not_produce_nan():
    logps = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    for aggregation in AGGREGATIONS:
        loss, _ = grpo_loss(logps, logps.detach(), torch.tensor([1.0, 1.0]), mask, aggregation=aggregation, **AGG)
        assert torch.isfinite(loss)


def test_garbage_on_padding_never_leaks():
    logps, old, ref, advantages, mask, _ = make_batch(14)
    clean_loss, _ = grpo_loss(logps, old, advantages, mask, ref_logps=ref, beta=0.04)
    clean_loss.backward()
    clean_grad = logps.grad.clone()
    logps.grad = None
    dirty_old, dirty_ref = old.clone(), ref.clone()
    dirty_old[~mask] = float("nan")
    dirty_ref[~mask] = float("inf")
    with torch.no_grad():
        logps[~mask] = float("-inf")
    loss, metrics = grpo_loss(logps, dirty_old, advantages, mask, ref_logps=dirty_ref, beta=0.04)
    loss.backward()
    assert loss.item() == clean_loss.item()
    assert torch.equal(logps.grad, clean_grad)
    assert all(torch.isfinite(value) for value in metrics.values())


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize(("seed", "extra"), [(15, 1), (16, 5), (17, 13), (18, 64)])
def test_result_does_not_depend_on_padding_length(aggregation, seed, extra):
    logps, old, ref, advantages, mask, gen = make_batch(seed, rows=8, length=37, dtype=torch.float32)
    weights = torch.rand(logps.shape, generator=gen) < 0.5

    def pad(tensor, value):
        return torch.cat([tensor, torch.full((tensor.shape[0], extra), value, dtype=tensor.dtype)], dim=1)

    short, _ = grpo_loss(logps, old, advantages, mask, token_weights=weights, ref_logps=ref, beta=0.04,
                         aggregation=aggregation, **AGG)
    long_logps = pad(logps.detach(), -3.0).requires_grad_()
    long, _ = grpo_loss(long_logps, pad(old, 7.0), advantages, pad(mask, False), token_weights=pad(weights, True),
                        ref_logps=pad(ref, -9.0), beta=0.04, aggregation=aggregation, **AGG)
    assert long.item() == short.item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_low_precision_inputs_compute_in_float32(dtype):
    logps64, old, ref, advantages, mask, _ = make_batch(16)
    logps = logps64.detach().to(dtype).requires_grad_()
    loss, _ = grpo_loss(logps, old.to(dtype), advantages.to(dtype), mask, ref_logps=ref.to(dtype), beta=0.04)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logps.grad.dtype == dtype and torch.isfinite(logps.grad.float()).all()
    expected, _ = grpo_loss(logps.detach().double(), old.to(dtype).double(), advantages.to(dtype).double(), mask,
                            ref_logps=ref.to(dtype).double(), beta=0.04)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(aggregation="mean"), "aggregation must be one of seq_mean, seq_mean_selected"),
        (dict(beta=0.1), "ref_logps is required when beta > 0"),
        (dict(beta=-1.0), "beta must be a non-negative number"),
        (dict(epsilon_low=-0.2), "epsilon_low must be a non-negative number"),
        (dict(advantages=torch.zeros(3)), r"advantages must have shape \[B\]=\(2,\)"),
        (dict(old_logps=torch.zeros(2, 4)), r"old_logps has shape \(2, 4\)"),
        (dict(completion_mask=torch.ones(2, 4)), r"completion_mask must have shape \(2, 3\)"),
        (dict(token_weights=torch.ones(3, 3)), r"token_weights has shape \(3, 3\)"),
        (dict(ref_logps=torch.zeros(2)), r"ref_logps has shape \(2,\)"),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    args = dict(
        logps=torch.zeros(2, 3), old_logps=torch.zeros(2, 3), advantages=torch.zeros(2),
        completion_mask=torch.ones(2, 3),
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        grpo_loss(**args)


# ---------------------------------------------------------------- the public aggregation


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("seed", range(5))
def test_batches_aggregated_one_at_a_time_weigh_in_by_their_normaliser(aggregation, seed):
    """agg(all rows) = sum_b n_b agg(b) / sum_b n_b, n_b = aggregation_normaliser(b): how the
    trainer adds up its one-backward-per-prompt losses. Soft weights and empty rows included."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    mask = torch.arange(5) < torch.randint(0, 6, (6, 1), generator=gen)
    weights = torch.rand(6, 5, generator=gen, dtype=torch.float64) * (torch.rand(6, 5, generator=gen) > 0.4) * mask
    batches = [slice(0, 2), slice(2, 3), slice(3, 6)]
    normalisers = [aggregation_normaliser(weights[b], mask[b], aggregation, **AGG) for b in batches]
    pieces = [agg_loss(values[b], weights[b], mask[b], aggregation, **AGG) for b in batches]
    if aggregation == "token_mean_global":  # one denominator for every batch: the pieces add up
        combined = sum(pieces)
    else:
        combined = sum(n * piece for n, piece in zip(normalisers, pieces)) / sum(normalisers)
    assert agg_loss(values, weights, mask, aggregation, **AGG).item() == pytest.approx(combined.item(), rel=1e-12)


def test_aggregation_normalisers_count_what_each_aggregation_averages():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    weights = torch.tensor([[0.5, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.25, 0.0, 0.0, 0.0]])
    expected = {"seq_mean": 3.0, "seq_mean_selected": 2.0, "token_mean": 6.0, "token_mean_selected": 1.75,
                "token_sum_norm": 3.0 * 8, "token_mean_global": 13.0}
    for aggregation, value in expected.items():
        assert aggregation_normaliser(weights, mask, aggregation, **AGG).item() == value, aggregation
    with pytest.raises(ValueError, match="token_sum_norm needs max_completion_length"):
        aggregation_normaliser(weights, mask, "token_sum_norm")
    with pytest.raises(ValueError, match="token_mean_global needs global_normaliser"):
        aggregation_normaliser(weights, mask, "token_mean_global")
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregation_normaliser(weights, mask, "mean")


def test_grpo_loss_is_agg_loss_of_the_clipped_objective():
    logps, old, _, advantages, mask, _ = make_batch(3)
    for aggregation in AGGREGATIONS:
        loss, _ = grpo_loss(logps, old, advantages, mask, aggregation=aggregation, **AGG)
        ratio = torch.exp(logps - old)
        per_token = -torch.min(ratio * advantages[:, None], torch.clamp(ratio, 0.8, 1.2) * advantages[:, None])
        per_token = torch.where(mask, per_token, torch.zeros_like(per_token))
        expected = agg_loss(per_token, mask.double(), mask, aggregation, **AGG)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-12), aggregation
