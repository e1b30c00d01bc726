"""The adaptive ratio by score mass (``select_key_tokens_by_mass``): hand cases, the loop
re-derivation, monotonicity in the mass, the floor and cap, and the padding / NaN rules."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from videoktr.core import select_key_tokens, select_key_tokens_by_mass

from .reference import mass_select, unit_rows
from .test_selection import CASE_SHAPES, NAN, random_case

MASSES = [0.0, 0.1, 0.3, 0.5, 0.8, 0.95, 1.0]
cases = st.tuples(
    *CASE_SHAPES,
    st.sampled_from(MASSES),
    st.sampled_from([(0.0, 1.0), (0.05, 0.5), (0.2, 0.2), (0.1, 0.9)]),  # floor, cap
    st.sampled_from(["sequence", "group", "batch"]),
)


def test_hand_cases_concentrated_selects_few_and_diffuse_many():
    mask = torch.ones(1, 10, dtype=torch.bool)
    concentrated = torch.tensor([[9.0, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0]])  # one token holds 90%
    diffuse = torch.ones(1, 10)
    pick = dict(mass=0.5, min_ratio=0.0, max_ratio=1.0, scope="sequence")
    assert select_key_tokens_by_mass(concentrated, mask, **pick).nonzero()[:, 1].tolist() == [0]
    assert select_key_tokens_by_mass(diffuse, mask, **pick).sum() == 5  # half the mass: half the tokens
    # 0.9 of the mass: the top token holds exactly 0.9, enough; 0.91 needs the next one too.
    assert select_key_tokens_by_mass(concentrated, mask, **{**pick, "mass": 0.9}).sum() == 1
    assert select_key_tokens_by_mass(concentrated, mask, **{**pick, "mass": 0.91}).sum() == 2
    # The floor and the cap bind: ceil(0.3 * 10) = 3 at least, ceil(0.2 * 10) = 2 at most.
    assert select_key_tokens_by_mass(concentrated, mask, mass=0.5, min_ratio=0.3, max_ratio=1.0,
                                     scope="sequence").sum() == 3
    assert select_key_tokens_by_mass(diffuse, mask, mass=0.5, min_ratio=0.0, max_ratio=0.2, scope="sequence").sum() == 2
    # Ties go to the earlier token; negative scores add no mass; an all-zero unit selects its floor.
    tied = torch.tensor([[1.0, 2.0, 2.0, -5.0, 2.0, 0, 0, 0, 0, 0]])
    # mass 7, half is 3.5: the first two 2s (4) reach it, the third 2 (row-major later) is left
    assert select_key_tokens_by_mass(tied, mask, **pick).nonzero()[:, 1].tolist() == [1, 2]
    zeros = torch.zeros(1, 10)
    assert select_key_tokens_by_mass(zeros, mask, **pick).sum() == 0
    assert select_key_tokens_by_mass(zeros, mask, mass=0.5, min_ratio=0.1, max_ratio=1.0, scope="sequence").sum() == 1


def test_group_scope_pools_the_mass_of_the_groups_completions():
    scores = torch.tensor([[4.0, 0.0], [3.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    mask = torch.ones_like(scores, dtype=torch.bool)
    out = select_key_tokens_by_mass(scores, mask, mass=0.8, min_ratio=0.0, max_ratio=1.0, scope="group", group_size=2)
    # Group 0: mass 8, 0.8 of it is 6.4: 4 + 3 reach it. Group 1: mass 4, 3.2 needs all four 1s.
    assert out.tolist() == [[True, False], [True, False], [True, True], [True, True]]


@settings(max_examples=200, deadline=None)
@given(cases)
def test_matches_the_loop_reference_within_floor_and_cap_and_never_selects_padding(case):
    seed, groups, group_size, length, ties, mass, (floor, cap), scope = case
    scores, mask = random_case(seed, groups, group_size, length, ties)
    out = select_key_tokens_by_mass({"s": scores}, mask, mass=mass, min_ratio=floor, max_ratio=cap, scope=scope,
                                    group_size=group_size)
    assert torch.equal(out, mass_select(scores, mask, mass, floor, cap, scope, group_size))
    available = mask & ~torch.isnan(scores)
    assert not (out & ~available).any(), "padding or NaN selected"
    for rows in unit_rows(scores.shape[0], scope, group_size):
        n = int(available[rows].sum())
        assert math.ceil(floor * n - 1e-6) <= int(out[rows].sum()) <= max(0, math.ceil(cap * n - 1e-6))


@settings(max_examples=100, deadline=None)
@given(cases)
def test_monotone_in_the_mass_nested_selections(case):
    seed, groups, group_size, length, ties, _, (floor, cap), scope = case
    scores, mask = random_case(seed, groups, group_size, length, ties)
    previous = None
    for mass in MASSES:
        out = select_key_tokens_by_mass(scores, mask, mass=mass, min_ratio=floor, max_ratio=cap, scope=scope,
                                        group_size=group_size)
        if previous is not None:
            assert not (previous & ~out).any(), f"a token left the selection as the mass grew to {mass}"
        previous = out


@settings(max_examples=100, deadline=None)
@given(cases)
def test_an_equal_floor_and_cap_is_the_fixed_top_r_rule_and_signals_are_united(case):
    seed, groups, group_size, length, ties, mass, (ratio, _), scope = case
    scores, mask = random_case(seed, groups, group_size, length, ties)
    other = scores.flip(-1)
    fixed = select_key_tokens({"a": scores, "b": other}, mask, ratio=ratio, scope=scope, group_size=group_size)
    adaptive = select_key_tokens_by_mass({"a": scores, "b": other}, mask, mass=mass, min_ratio=ratio, max_ratio=ratio,
                                         scope=scope, group_size=group_size)
    assert torch.equal(adaptive, fixed)


@pytest.mark.parametrize("kwargs, message", [
    ({"mass": 1.5}, "mass must be a number in"),
    ({"mass": True}, "mass must be a number in"),
    ({"min_ratio": -0.1}, "min_ratio must be"),
    ({"min_ratio": 0.6, "max_ratio": 0.5}, "must not exceed max_ratio"),
    ({"scope": "group"}, "group_size"),
])
def test_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_key_tokens_by_mass(torch.tensor([[1.0, NAN]]), torch.ones(1, 2, dtype=torch.bool),
                                  **{"scope": "sequence", **kwargs})
