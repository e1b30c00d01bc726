import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from videoktr import select_key_tokens
from videoktr.core import num_selected

from .reference import quantile_select, topk_select, unit_rows

NAN = float("nan")


def random_case(seed: int, num_groups: int, group_size: int, length: int, tie_levels: int | None):
    """Scores with optional heavy ties, ~10% NaN, and right-padded completion masks."""
    gen = torch.Generator().manual_seed(seed)
    rows = num_groups * group_size
    if tie_levels:
        scores = torch.randint(0, tie_levels, (rows, length), generator=gen).float()
    else:
        scores = torch.randn(rows, length, generator=gen)
    scores[torch.rand(rows, length, generator=gen) < 0.1] = NAN
    lengths = torch.randint(0, length + 1, (rows,), generator=gen)
    mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    return scores, mask


# random_case's arguments: seed, groups, group size, length, tie levels.
CASE_SHAPES = (st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 4), st.integers(1, 9),
               st.sampled_from([None, 2, 3]))
cases = st.tuples(
    *CASE_SHAPES,
    st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.5, 0.9, 1.0]),
    st.sampled_from(["sequence", "group", "batch"]),
)


# ---------------------------------------------------------------- hand-computed


def test_hand_computed_each_scope():
    scores = {"visual": torch.tensor([[1.0, 3.0, 2.0, NAN], [5.0, 0.0, 0.0, 9.0]])}
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])  # 9.0 sits on padding
    # sequence: row 0 has 3 available -> k=2 (3, 2); row 1 has 3 -> k=2 (5, then the earlier 0)
    assert select_key_tokens(scores, mask, 0.5, scope="sequence").tolist() == [
        [False, True, True, False],
        [True, True, False, False],
    ]
    # group of 2 rows: 6 available -> k=3: 5, 3, 2
    assert select_key_tokens(scores, mask, 0.5, scope="group", group_size=2).tolist() == [
        [False, True, True, False],
        [True, False, False, False],
    ]
    # batch equals the single group here
    assert torch.equal(
        select_key_tokens(scores, mask, 0.5, scope="batch"),
        select_key_tokens(scores, mask, 0.5, scope="group", group_size=2),
    )


def test_k_is_ceil_of_ratio_times_n_with_float_slack():
    assert num_selected(0.2, 10) == 2  # 0.2 * 10 = 2.0000000000000004 in floats
    assert num_selected(0.2, 11) == 3
    assert num_selected(0.1, 3) == 1
    assert num_selected(0.0, 5) == 0
    assert num_selected(1.0, 5) == 5
    assert num_selected(0.3, 0) == 0


def test_ties_go_to_the_earlier_token_in_row_major_order():
    scores = torch.ones(2, 3)
    mask = torch.ones(2, 3, dtype=torch.bool)
    out = select_key_tokens({"entropy": scores}, mask, ratio=0.5, scope="group", group_size=2)
    assert out.tolist() == [[True, True, True], [False, False, False]]
    out = select_key_tokens({"entropy": scores}, mask, ratio=0.34, scope="sequence")
    assert out.tolist() == [[True, True, False], [True, True, False]]


def test_union_over_signals_and_per_signal_ratios():
    mask = torch.ones(1, 5, dtype=torch.bool)
    scores = {
        "visual": torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]]),
        "temporal": torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]),
        "entropy": torch.tensor([[0.0, 0.0, 9.0, 0.0, 0.0]]),
    }
    out = select_key_tokens(scores, mask, ratio=0.2, scope="sequence")
    assert out.tolist() == [[True, False, True, False, True]]
    ratios = {"visual": 0.4, "temporal": 0.0, "entropy": 0.2}
    out = select_key_tokens(scores, mask, ratio=ratios, scope="sequence")
    assert out.tolist() == [[True, True, True, False, False]]


def test_negative_and_infinite_scores_rank_correctly():
    scores = torch.tensor([[-5.0, float("-inf"), -1.0, float("inf"), NAN]])
    mask = torch.ones(1, 5, dtype=torch.bool)
    out = select_key_tokens({"s": scores}, mask, ratio=0.75, scope="sequence")  # n=4, k=3
    assert out.tolist() == [[True, False, True, True, False]]
    out = select_key_tokens({"s": scores}, mask, ratio=1.0, scope="sequence")
    assert out.tolist() == [[True, True, True, True, False]]


def test_quantile_hand_computed_and_its_ties():
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    mask = torch.ones(1, 5, dtype=torch.bool)
    # quantile(0.8) of 1..5 = 1 + 0.8*4 = 4.2 -> only 5 is >= it
    out = select_key_tokens({"s": scores}, mask, ratio=0.2, scope="sequence", method="quantile")
    assert out.tolist() == [[False, False, False, False, True]]
    # with ties the quantile rule takes every tied token, unlike exact top-k
    tied = torch.tensor([[1.0, 5.0, 5.0, 5.0, 2.0]])
    out = select_key_tokens({"s": tied}, mask, ratio=0.2, scope="sequence", method="quantile")
    assert out.tolist() == [[False, True, True, True, False]]
    out = select_key_tokens({"s": tied}, mask, ratio=0.2, scope="sequence")
    assert out.tolist() == [[False, True, False, False, False]]


def test_bare_tensor_counts_as_one_signal():
    scores = torch.tensor([[3.0, 1.0, 2.0]])
    mask = torch.ones(1, 3)
    assert select_key_tokens(scores, mask, 0.34, scope="sequence").tolist() == [[True, False, True]]


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(cases)
def test_topk_matches_reference_and_selects_exactly_k(case):
    seed, groups, group_size, length, ties, ratio, scope = case
    scores, mask = random_case(seed, groups, group_size, length, ties)
    out = select_key_tokens({"s": scores}, mask, ratio=ratio, scope=scope, group_size=group_size)
    assert torch.equal(out, topk_select(scores, mask, ratio, scope, group_size))
    available = mask & ~torch.isnan(scores)
    assert not (out & ~available).any(), "padding or NaN selected"
    for rows in unit_rows(scores.shape[0], scope, group_size):
        n = int(available[rows].sum())
        assert int(out[rows].sum()) == max(0, min(n, math.ceil(ratio * n - 1e-6)))
    if ratio == 0.0:
        assert not out.any()
    if ratio == 1.0:
        assert torch.equal(out, available)


@settings(max_examples=150, deadline=None)
@given(cases)
def test_quantile_matches_torch_quantile_reference(case):
    seed, groups, group_size, length, ties, ratio, scope = case
    scores, mask = random_case(seed, groups, group_size, length, ties)
    out = select_key_tokens({"s": scores}, mask, ratio=ratio, scope=scope, group_size=group_size, method="quantile")
    assert torch.equal(out, quantile_select(scores, mask, ratio, scope, group_size))
    available = mask & ~torch.isnan(scores)
    if ratio == 1.0:
        assert torch.equal(out, available)


@settings(max_examples=60, deadline=None)
@given(cases, st.sampled_from(["topk", "quantile"]))
def test_union_is_the_or_of_single_signal_masks(case, method):
    seed, groups, group_size, length, ties, ratio, scope = case
    first, mask = random_case(seed, groups, group_size, length, ties)
    second, _ = random_case(seed + 1, groups, group_size, length, ties)
    kwargs = dict(scope=scope, group_size=group_size, method=method)
    both = select_key_tokens({"a": first, "b": second}, mask, ratio=ratio, **kwargs)
    separately = select_key_tokens({"a": first}, mask, ratio, **kwargs) | select_key_tokens(
        {"b": second}, mask, ratio, **kwargs
    )
    assert torch.equal(both, separately)


@settings(max_examples=60, deadline=None)
@given(cases, st.integers(1, 5), st.sampled_from(["topk", "quantile"]))
def test_result_does_not_depend_on_padding_length(case, extra, method):
    seed, groups, group_size, length, ties, ratio, scope = case
    scores, mask = random_case(seed, groups, group_size, length, ties)
    garbage = torch.randn(scores.shape[0], extra) * 100
    padded_scores = torch.cat([scores, garbage], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(scores.shape[0], extra, dtype=torch.bool)], dim=1)
    kwargs = dict(ratio=ratio, scope=scope, group_size=group_size, method=method)
    short = select_key_tokens({"s": scores}, mask, **kwargs)
    padded = select_key_tokens({"s": padded_scores}, padded_mask, **kwargs)
    assert torch.equal(padded[:, :length], short)
    assert not padded[:, length:].any()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_other_dtypes_select_like_float32(dtype):
    torch.manual_seed(0)
    scores = torch.randn(4, 6).to(dtype)
    mask = torch.ones(4, 6, dtype=torch.bool)
    out = select_key_tokens({"s": scores}, mask, 0.3, scope="group", group_size=2)
    assert torch.equal(out, select_key_tokens({"s": scores.float()}, mask, 0.3, scope="group", group_size=2))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(ratio=1.5), r"ratio must lie in \[0, 1\]"),
        (dict(ratio=-0.1), r"ratio must lie in \[0, 1\]"),
        (dict(ratio=float("nan")), r"ratio must lie in \[0, 1\]"),
        (dict(ratio="0.2"), r"ratio must be a number"),
        (dict(ratio={"s": 0.2, "visual": 0.1}), r"unknown \['visual'\]"),
        (dict(ratio={"other": 0.2}), r"missing \['s'\]"),
        (dict(scope="prompt"), r"scope must be one of sequence, group, batch"),
        (dict(scope="group", group_size=None), r"group_size is required"),
        (dict(scope="group", group_size=3), r"not divisible by group_size=3"),
        (dict(method="percentile"), r"method must be one of topk, quantile"),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    base = dict(ratio=0.2, scope="group", group_size=2)
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        select_key_tokens({"s": torch.zeros(4, 3)}, torch.ones(4, 3), **base)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"scores\['s'\] must be 2-D"):
        select_key_tokens({"s": torch.zeros(4, 3, 2)}, torch.ones(4, 3), scope="batch")
    with pytest.raises(ValueError, match=r"scores\['b'\] has shape \(4, 2\)"):
        select_key_tokens({"a": torch.zeros(4, 3), "b": torch.zeros(4, 2)}, torch.ones(4, 3), scope="batch")
    with pytest.raises(ValueError, match=r"completion_mask must have shape \(4, 3\)"):
        select_key_tokens({"s": torch.zeros(4, 3)}, torch.ones(4, 2), scope="batch")
    with pytest.raises(ValueError, match="non-empty mapping"):
        select_key_tokens({}, torch.ones(4, 2), scope="batch")


@pytest.mark.parametrize("ratio", [0.05, 0.1, 0.2, 0.3, 1 / 3, 0.7, 0.95])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quantile_threshold_is_bit_identical_on_large_units(ratio, dtype):
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(8, 300, generator=gen, dtype=dtype)
    mask = torch.arange(300).unsqueeze(0) < torch.randint(1, 301, (8, 1), generator=gen)
    for scope in ("sequence", "group", "batch"):
        out = select_key_tokens({"s": scores}, mask, ratio, scope=scope, group_size=4, method="quantile")
        assert torch.equal(out, quantile_select(scores, mask, ratio, scope, 4)), scope
