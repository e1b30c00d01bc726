"""Each token's gradient weight and the gradient share a token mask keeps, against autograd."""

import pytest
import torch

from videoktr.core import gradient_share, token_log_stats, token_logps_and_entropy


def test_gradient_weight_is_the_squared_norm_of_the_logprob_gradient():
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 5, 11, generator=gen, dtype=torch.float64) * 4).requires_grad_()
    ids = torch.randint(0, 11, (3, 5), generator=gen)
    stats = token_log_stats(logits, ids, chunk_size=4, with_gradient_weight=True)
    for b in range(3):
        for t in range(5):
            (grad,) = torch.autograd.grad(stats.logps[b, t], logits, retain_graph=True)
            assert stats.gradient_weight[b, t].item() == pytest.approx(grad.square().sum().item(), rel=1e-10)
    assert not stats.gradient_weight.requires_grad and stats.logps.requires_grad


def test_the_statistics_do_not_depend_on_the_chunk_size_and_match_the_two_value_form():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 9, 17, generator=gen)
    ids = torch.randint(0, 17, (2, 9), generator=gen)
    whole = token_log_stats(logits, ids, chunk_size=None, with_gradient_weight=True)
    for chunk in (1, 4, 7):
        chunked = token_log_stats(logits, ids, chunk_size=chunk, with_gradient_weight=True)
        for name in ("logps", "entropy", "gradient_weight"):
            torch.testing.assert_close(getattr(chunked, name), getattr(whole, name))
    logps, entropy = token_logps_and_entropy(logits, ids)
    torch.testing.assert_close(logps, whole.logps)
    torch.testing.assert_close(entropy, whole.entropy)
    assert token_log_stats(logits, ids).gradient_weight is None


def test_a_certain_token_has_almost_no_gradient_weight():
    logits = torch.tensor([[[20.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    weight = token_log_stats(logits, torch.tensor([[0, 0]]), with_gradient_weight=True).gradient_weight
    assert weight[0, 0].item() < 1e-8
    # uniform over 3, the chosen one: 1 - 2/3 + 3 * (1/9) = 2/3
    assert weight[0, 1].item() == pytest.approx(2 / 3)


def test_gradient_share_is_the_share_of_the_autograd_gradient_norm():
    gen = torch.Generator().manual_seed(2)
    logits = (torch.randn(4, 6, 13, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    ids = torch.randint(0, 13, (4, 6), generator=gen)
    advantages = torch.randn(4, generator=gen, dtype=torch.float64)
    completion = torch.arange(6) < torch.tensor([[6], [4], [5], [2]])
    selected = (torch.rand(4, 6, generator=gen) < 0.4) & completion
    stats = token_log_stats(logits, ids, with_gradient_weight=True)
    objective = (advantages[:, None] * stats.logps * completion).sum()
    (grad,) = torch.autograd.grad(objective, logits)
    per_position = grad.square().sum(-1)
    expected = (per_position * selected).sum() / (per_position * completion).sum()
    share = gradient_share(advantages, stats.gradient_weight, selected, completion)
    assert share.item() == pytest.approx(expected.item(), rel=1e-10)
    complement = gradient_share(advantages, stats.gradient_weight, ~selected, completion)
    assert (share + complement).item() == pytest.approx(1.0)


def test_gradient_share_edge_cases_and_errors():
    weight = torch.ones(2, 3)
    completion = torch.ones(2, 3, dtype=torch.bool)
    assert gradient_share(torch.zeros(2), weight, completion, completion).item() == 0.0  # no gradient at all
    per_token = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    mask = torch.tensor([[True, False, False], [False, False, False]])
    assert gradient_share(per_token, weight, mask, completion).item() == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="advantages must have shape"):
        gradient_share(torch.zeros(3), weight, mask, completion)
