"""TRL's ``loss_type`` names against our aggregations: each compared, value and gradient, with a
re-derivation of TRL 1.16's ``GRPOTrainer._compute_loss`` (token-level importance sampling, no
entropy mask, no vLLM correction, training mode), written here from its source."""

from __future__ import annotations

import pytest
import torch

from videoktr.core import TRL_LOSS_TYPES, grpo_loss


def trl_compute_loss(logps, old_logps, ref_logps, advantages, mask, *, loss_type, beta, epsilon_low=0.2,
                     epsilon_high=0.28, max_completion_length=None, num_items_in_batch=None, num_processes=1,
                     gradient_accumulation_steps=1, steps_per_generation=None, use_bias_correction_kl=False):
    """One micro-batch's loss as TRL 1.16 computes it (``trl/trainer/grpo_trainer.py``)."""
    steps_per_generation = steps_per_generation or gradient_accumulation_steps
    advantages = advantages.unsqueeze(1)
    coef_1 = torch.exp(logps - old_logps)
    mask = mask.to(logps.dtype)
    if beta != 0.0:
        per_token_kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
        if use_bias_correction_kl:
            per_token_kl = per_token_kl * coef_1
    coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
    per_token_loss = -torch.min(coef_1 * advantages, coef_2 * advantages)
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    if loss_type == "grpo":
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
        return loss / gradient_accumulation_steps
    if loss_type == "bnpo":
        loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
        return loss / gradient_accumulation_steps
    if loss_type == "dr_grpo":
        loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
        return loss / gradient_accumulation_steps
    if loss_type == "dapo":
        normalizer = torch.as_tensor(num_items_in_batch, dtype=logps.dtype).clamp(min=1.0) / num_processes
        normalizer = normalizer * gradient_accumulation_steps / steps_per_generation
        return (per_token_loss * mask).sum() / normalizer
    raise ValueError(loss_type)


def batch(seed: int, rows: int = 6, length: int = 9, on_policy: bool = False):
    gen = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(rows, length, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    old = logps.detach() if on_policy else logps.detach() + torch.randn(rows, length, generator=gen,
                                                                        dtype=torch.float64) * 0.3
    ref = logps.detach() + torch.randn(rows, length, generator=gen, dtype=torch.float64) * 0.3
    advantages = torch.randn(rows, generator=gen, dtype=torch.float64)
    lengths = torch.randint(1, length + 1, (rows,), generator=gen)
    mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    return logps, old, ref, advantages, mask


def value_and_grad(loss: torch.Tensor, logps: torch.Tensor) -> tuple[float, torch.Tensor]:
    (grad,) = torch.autograd.grad(loss, logps)
    return loss.item(), grad


def test_every_trl_name_maps_to_an_aggregation():
    assert set(TRL_LOSS_TYPES) == {"grpo", "bnpo", "dr_grpo", "dapo"}


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo"])
@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("on_policy", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_per_micro_batch_loss_types_equal_trl(loss_type, bias_correction, on_policy, seed):
    logps, old, ref, advantages, mask = batch(seed, on_policy=on_policy)
    accumulation = 3
    trl = trl_compute_loss(logps, old, ref, advantages, mask, loss_type=loss_type, beta=0.04,
                           max_completion_length=12, gradient_accumulation_steps=accumulation,
                           use_bias_correction_kl=bias_correction)
    ours, _ = grpo_loss(logps, old, advantages, mask, ref_logps=ref, beta=0.04, epsilon_low=0.2, epsilon_high=0.28,
                        aggregation=TRL_LOSS_TYPES[loss_type], mask_kl=False, bias_correction_kl=bias_correction,
                        max_completion_length=12)
    trl_value, trl_grad = value_and_grad(trl, logps)
    our_value, our_grad = value_and_grad(ours / accumulation, logps)  # the trainer divides by the accumulation
    assert our_value == pytest.approx(trl_value, rel=1e-12)
    torch.testing.assert_close(our_grad, trl_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("num_processes", [1, 2, 4])
@pytest.mark.parametrize("bias_correction", [False, True])
def test_dapo_normalises_by_the_tokens_of_the_whole_step(num_processes, bias_correction):
    """An optimizer step of ``accumulation`` micro-batches on each of ``num_processes``
    processes: TRL divides each micro-batch's token sum by N / P (N the step's completion tokens
    on every process); the trainer adds P * ``token_mean_global`` losses; DDP averages
    processes. Both must be the token mean over the whole step."""
    accumulation = 2
    micro_batches = [batch(seed) for seed in range(num_processes * accumulation)]
    total_tokens = sum(int(mask.sum()) for *_, mask in micro_batches)
    trl_total, our_total = 0.0, 0.0
    for logps, old, ref, advantages, mask in micro_batches:
        trl = trl_compute_loss(logps, old, ref, advantages, mask, loss_type="dapo", beta=0.04,
                               num_items_in_batch=total_tokens, num_processes=num_processes,
                               gradient_accumulation_steps=accumulation, use_bias_correction_kl=bias_correction)
        ours, _ = grpo_loss(logps, old, advantages, mask, ref_logps=ref, beta=0.04, epsilon_low=0.2,
                            epsilon_high=0.28, aggregation="token_mean_global", mask_kl=False,
                            bias_correction_kl=bias_correction, global_normaliser=total_tokens)
        trl_value, trl_grad = value_and_grad(trl, logps)
        our_value, our_grad = value_and_grad(ours * num_processes, logps)  # as the trainer scales it
        assert our_value == pytest.approx(trl_value, rel=1e-12)
        torch.testing.assert_close(our_grad, trl_grad, rtol=1e-12, atol=1e-15)
        trl_total += trl_value / num_processes  # DDP's average over processes
        our_total += our_value / num_processes
    # ... and the step's loss is the plain token mean of every token of the step
    token_mean, _ = grpo_loss(
        torch.cat([b[0].detach() for b in micro_batches]), torch.cat([b[1] for b in micro_batches]),
        torch.cat([b[3] for b in micro_batches]), torch.cat([b[4] for b in micro_batches]),
        ref_logps=torch.cat([b[2] for b in micro_batches]), beta=0.04, epsilon_low=0.2, epsilon_high=0.28,
        aggregation="token_mean", mask_kl=False, bias_correction_kl=bias_correction,
    )
    assert our_total == pytest.approx(token_mean.item(), rel=1e-12)
    assert trl_total == pytest.approx(token_mean.item(), rel=1e-12)


def test_bias_correction_changes_the_kl_gradient_on_policy_but_not_the_value():
    logps, old, ref, advantages, mask = batch(7, on_policy=True)
    plain, _ = grpo_loss(logps, old, advantages, mask, ref_logps=ref, beta=0.1)
    corrected, _ = grpo_loss(logps, old, advantages, mask, ref_logps=ref, beta=0.1, bias_correction_kl=True)
    plain_value, plain_grad = value_and_grad(plain, logps)
    corrected_value, corrected_grad = value_and_grad(corrected, logps)
    assert corrected_value == pytest.approx(plain_value, rel=1e-12)  # rho = 1 on-policy
    assert not torch.allclose(corrected_grad, plain_grad)
