
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from videoktr import select_key_tokens, soft_token_weights

NAN = float("nan")
SCORES = {"s": torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.0]])}
MASK = torch.ones(1, 5, dtype=torch.bool)
U = torch.tensor([[0.0, 0.75, 0.25, 0.5, 1.0]])  # normalised ranks of SCORES


def test_linear_is_one_minus_normalised_rank():
    out = soft_token_weights(SCORES, MASK, "linear", scope="sequence")
    assert torch.allclose(out, 1 - U)


def test_exponential_halves_at_the_ratio_boundary():
    out = soft_token_weights(SCORES, MASK, "exponential", ratio=0.25, scope="sequence")
    assert torch.allclose(out, 2 ** (-U / 0.25))
    assert out[0, 2].item() == pytest.approx(0.5)


def test_sigmoid_is_centred_on_the_ratio():
    out = soft_token_weights(SCORES, MASK, "sigmoid", ratio=0.25, scope="sequence", temperature=0.1)
    assert torch.allclose(out, torch.sigmoid((0.25 - U) / 0.1))
    assert out[0, 2].item() == pytest.approx(0.5)


def test_softmax_is_normalised_by_its_largest_weight():
    s = SCORES["s"]
    out = soft_token_weights(SCORES, MASK, "softmax", scope="sequence", temperature=2.0)
    z = (s - s.max()) / s.std(unbiased=False)
    softmax = torch.softmax(z / 2.0, dim=-1)
    assert torch.allclose(out, softmax / softmax.max(), atol=1e-6)
    assert out.max().item() == pytest.approx(1.0)


def test_sigmoid_with_tiny_temperature_recovers_the_hard_mask():
    torch.manual_seed(0)
    scores = {"s": torch.randn(4, 9)}
    mask = torch.ones(4, 9, dtype=torch.bool)
    # With 18 tokens per group, ranks sit at multiples of 1/17; the boundary 0.3 falls between.
    soft = soft_token_weights(scores, mask, "sigmoid", ratio=0.3, scope="group", group_size=2, temperature=1e-4)
    hard = select_key_tokens(scores, mask, ratio=0.3, scope="group", group_size=2)
    # top-k takes ceil(0.3 * 18) = 6 tokens (ranks 0..5/17 <= 0.3); the sigmoid takes u < 0.3
    assert torch.equal(soft > 0.5, hard)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from(["softmax", "sigmoid", "linear", "exponential"]),
    st.sampled_from([0.1, 0.2, 0.5, 1.0]),
    st.sampled_from(["sequence", "group", "batch"]),
)
def test_weights_lie_in_unit_interval_are_zero_off_the_mask_and_monotone(seed, weighting, ratio, scope):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(4, 6, generator=gen)
    scores[torch.rand(4, 6, generator=gen) < 0.15] = NAN
    mask = torch.rand(4, 6, generator=gen) < 0.8
    out = soft_token_weights({"s": scores}, mask, weighting, ratio=ratio, scope=scope, group_size=2)
    assert ((out >= 0) & (out <= 1)).all()
    assert (out[~mask | torch.isnan(scores)] == 0).all()
    # within a unit, a strictly higher score never gets a lower weight
    for rows in ([0], [1], [2], [3]) if scope == "sequence" else ([0, 1], [2, 3]) if scope == "group" else ([0, 1, 2, 3],):
        available = mask[rows] & ~torch.isnan(scores[rows])
        values, weights = scores[rows][available], out[rows][available]
        order = torch.argsort(values)
        assert (weights[order].diff() >= -1e-6).all()


def test_ratio_zero_contributes_nothing_and_signals_combine_by_max_or_mean():
    scores = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[0.0, 1.0]])}
    mask = torch.ones(1, 2, dtype=torch.bool)
    out = soft_token_weights(scores, mask, "linear", ratio={"a": 0.5, "b": 0.0}, scope="sequence")
    assert out.tolist() == [[1.0, 0.0]]
    assert soft_token_weights(scores, mask, "linear", scope="sequence").tolist() == [[1.0, 1.0]]
    assert soft_token_weights(scores, mask, "linear", scope="sequence", combine="mean").tolist() == [[0.5, 0.5]]


def test_single_token_unit_gets_full_weight():
    out = soft_token_weights({"s": torch.tensor([[2.0]])}, torch.ones(1, 1), "linear", scope="sequence")
    assert out.item() == 1.0
    out = soft_token_weights({"s": torch.tensor([[2.0, 2.0]])}, torch.ones(1, 2), "softmax", scope="sequence")
    assert out.tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(weighting="gaussian"), "weighting must be one of softmax, sigmoid, linear, exponential"),
        (dict(weighting="sigmoid", temperature=0.0), "temperature must be a positive number"),
        (dict(weighting="softmax", combine="sum"), "combine must be 'max' or 'mean'"),
        (dict(weighting="linear", ratio=2.0), r"ratio must lie in \[0, 1\]"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        soft_token_weights(SCORES, MASK, scope="sequence", **kwargs)
