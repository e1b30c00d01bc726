import math

import pytest
import torch

from videoktr import group_advantages


def test_hand_computed_std_scale():
    # group 1: rewards (1, 0): mean 0.5, unbiased std sqrt(0.5)
    # group 2: rewards (2, 2, ...) all equal -> 0
    rewards = torch.tensor([1.0, 0.0, 2.0, 2.0])
    out = group_advantages(rewards, group_size=2, eps=1e-4)
    std = math.sqrt(0.5)
    expected = torch.tensor([0.5 / (std + 1e-4), -0.5 / (std + 1e-4), 0.0, 0.0])
    assert torch.allclose(out, expected, atol=1e-7)


def test_hand_computed_no_scale():
    out = group_advantages(torch.tensor([3.0, 1.0, 2.0, 0.0, 0.0, 3.0]), group_size=3, scale="none")
    assert torch.allclose(out, torch.tensor([1.0, -1.0, 0.0, -1.0, -1.0, 2.0]))


def test_matches_unbiased_std_on_random_rewards():
    torch.manual_seed(0)
    rewards = torch.rand(24, dtype=torch.float64)
    out = group_advantages(rewards, group_size=8, eps=1e-4)
    for g in range(3):
        group = rewards[g * 8 : (g + 1) * 8].tolist()
        mean = sum(group) / 8
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / 7)
        for i, r in enumerate(group):
            assert out[g * 8 + i].item() == pytest.approx((r - mean) / (std + 1e-4), rel=1e-12)


def test_group_of_one_has_zero_advantage_not_nan():
    out = group_advantages(torch.tensor([1.0, 0.0, 5.0]), group_size=1)
    assert torch.equal(out, torch.zeros(3))


def test_integer_rewards_and_dtypes():
    assert group_advantages(torch.tensor([1, 0]), 2).dtype == torch.float32
    assert group_advantages(torch.tensor([1.0, 0.0], dtype=torch.bfloat16), 2).dtype == torch.float32
    assert group_advantages(torch.tensor([1.0, 0.0], dtype=torch.float64), 2).dtype == torch.float64


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="not divisible by group_size=4"):
        group_advantages(torch.zeros(6), group_size=4)
    with pytest.raises(ValueError, match="scale must be one of std, none"):
        group_advantages(torch.zeros(4), group_size=2, scale="mad")
    with pytest.raises(ValueError, match="rewards must be 1-D"):
        group_advantages(torch.zeros(4, 1), group_size=2)
    with pytest.raises(ValueError, match="group_size must be a positive int"):
        group_advantages(torch.zeros(4), group_size=0)
