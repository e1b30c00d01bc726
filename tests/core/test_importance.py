"""Truncated importance weights (a sampler other than the trainer) and their place in the loss."""

import pytest
import torch

from videoktr.core import grpo_loss, truncated_importance_weights


def _batch(seed=0, rows=4, length=6):
    gen = torch.Generator().manual_seed(seed)
    logps = -torch.rand(rows, length, generator=gen, dtype=torch.float64) * 3
    mask = torch.ones(rows, length, dtype=torch.bool)
    mask[1, 4:] = False
    mask[3, 2:] = False
    advantages = torch.randn(rows, generator=gen, dtype=torch.float64)
    return logps, mask, advantages


def test_weights_are_the_truncated_ratio_and_zero_on_padding():
    trainer = torch.tensor([[-1.0, -2.0, -0.5, 0.0]])
    sampler = torch.tensor([[-1.0, -1.0, -2.0, float("nan")]])  # the sampler reports nothing on padding
    mask = torch.tensor([[True, True, True, False]])
    weights, metrics = truncated_importance_weights(trainer, sampler, mask, cap=2.0)
    torch.testing.assert_close(weights, torch.tensor([[1.0, torch.exp(torch.tensor(-1.0)).item(), 2.0, 0.0]]))
    assert metrics["truncated_share"].item() == pytest.approx(1 / 3)  # exp(1.5) > 2
    assert metrics["logp_mismatch_max"].item() == pytest.approx(1.5)
    assert metrics["logp_mismatch_mean"].item() == pytest.approx((0 + 1 + 1.5) / 3)
    assert metrics["ratio_mean"].item() == pytest.approx((1 + torch.exp(torch.tensor(-1.0)).item()
                                                           + torch.exp(torch.tensor(1.5)).item()) / 3)


def test_identical_logprobs_give_the_on_policy_loss_and_gradient():
    logps, mask, advantages = _batch()
    weights, metrics = truncated_importance_weights(logps, logps.clone(), mask)
    assert metrics["truncated_share"].item() == 0 and metrics["logp_mismatch_max"].item() == 0
    results = []
    for importance in (None, weights):
        current = logps.clone().requires_grad_()
        loss, _ = grpo_loss(current, logps, advantages, mask, aggregation="token_mean", importance_weights=importance)
        (grad,) = torch.autograd.grad(loss, current)
        results.append((loss, grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=0)


def test_weights_scale_each_tokens_policy_gradient_term_and_not_the_kl():
    logps, mask, advantages = _batch(seed=1)
    gen = torch.Generator().manual_seed(2)
    weights = torch.rand(logps.shape, generator=gen, dtype=torch.float64) * 2
    ref = logps - 0.3
    current = logps.clone().requires_grad_()
    loss, _ = grpo_loss(current, logps, advantages, mask, ref_logps=ref, beta=0.1, aggregation="token_mean",
                        mask_kl=False, importance_weights=weights)
    (grad,) = torch.autograd.grad(loss, current)
    # On-policy (ratio 1, no clipping): d pg_t / d logp_t = -A iw_t; the KL gradient is unweighted.
    tokens = mask.sum()
    diff = ref - logps
    kl_grad = 0.1 * (1 - torch.exp(diff))  # d/dlogp of exp(ref - logp) - (ref - logp) - 1
    expected = torch.where(mask, (-advantages[:, None] * weights + kl_grad) / tokens, torch.zeros(()))
    torch.testing.assert_close(grad, expected.to(grad.dtype))


def test_bad_arguments_are_named():
    logps, mask, _ = _batch()
    with pytest.raises(ValueError, match="sampler_logps has shape"):
        truncated_importance_weights(logps, logps[:, :3], mask)
    with pytest.raises(ValueError, match="cap must be a positive number"):
        truncated_importance_weights(logps, logps, mask, cap=0)
    with pytest.raises(ValueError, match="importance_weights has shape"):
        grpo_loss(logps, logps, torch.zeros(4), mask, importance_weights=logps[:, :2])
