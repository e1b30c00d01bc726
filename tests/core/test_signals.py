import math

import pytest
import torch

from videoktr import logprob_delta, token_entropy, token_logps_and_entropy


def test_logprob_delta_hand_computed():
    logps = torch.tensor([[-0.5, -2.0, -1.0]])
    cf = torch.tensor([[-1.5, -1.0, -1.0]])
    assert torch.equal(logprob_delta(logps, cf), torch.tensor([[1.0, 1.0, 0.0]]))
    assert torch.equal(logprob_delta(logps, cf, signed=True), torch.tensor([[1.0, -1.0, 0.0]]))


def test_logprob_delta_keeps_nan_for_unavailable_tokens():
    logps = torch.tensor([[-0.5, -2.0]])
    cf = torch.tensor([[float("nan"), -1.0]])
    out = logprob_delta(logps, cf)
    assert math.isnan(out[0, 0]) and out[0, 1] == 1.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_logprob_delta_dtypes(dtype):
    out = logprob_delta(torch.tensor([[-0.5]], dtype=dtype), torch.tensor([[-1.5]], dtype=dtype))
    assert out.dtype == torch.promote_types(dtype, torch.float32)
    assert out.item() == pytest.approx(1.0, abs=1e-2)


def test_logprob_delta_rejects_bad_input():
    with pytest.raises(ValueError, match="cf_logps has shape"):
        logprob_delta(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="logps must be a floating-point"):
        logprob_delta(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="cf_logps must be a torch.Tensor"):
        logprob_delta(torch.zeros(2, 3), [[0.0] * 3] * 2)


def test_entropy_of_uniform_and_one_hot():
    vocab = 7
    uniform = torch.zeros(2, 3, vocab)
    assert torch.allclose(token_entropy(uniform), torch.full((2, 3), math.log(vocab)))
    one_hot = torch.full((1, 2, vocab), float("-inf"))
    one_hot[..., 3] = 0.0
    out = token_entropy(one_hot)
    assert torch.equal(out, torch.zeros(1, 2))


def test_entropy_hand_computed_two_way():
    # p = (0.25, 0.75): H = -(0.25 ln 0.25 + 0.75 ln 0.75)
    logits = torch.log(torch.tensor([[[0.25, 0.75]]]))
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert token_entropy(logits).item() == pytest.approx(expected, rel=1e-6)


def test_entropy_matches_categorical_and_is_stable_for_huge_logits():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 50) * 4
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert torch.allclose(token_entropy(logits), expected, atol=1e-5)
    shifted = token_entropy(logits * 1000 + 1e4)
    assert torch.isfinite(shifted).all()
    assert (shifted >= 0).all()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 15, 1000, None])
def test_entropy_chunked_equals_unchunked(chunk_size):
    torch.manual_seed(1)
    logits = torch.randn(3, 5, 11)
    assert torch.allclose(token_entropy(logits, chunk_size=chunk_size), token_entropy(logits, chunk_size=None), atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_entropy_other_dtypes(dtype):
    torch.manual_seed(2)
    logits = torch.randn(2, 4, 9)
    out = token_entropy(logits.to(dtype))
    assert out.dtype == torch.promote_types(dtype, torch.float32)
    assert torch.allclose(out.double(), token_entropy(logits.double()), atol=5e-2 if dtype == torch.bfloat16 else 1e-10)


def test_entropy_rejects_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk_size"):
        token_entropy(torch.zeros(2, 3), chunk_size=0)


def test_logps_and_entropy_match_their_definitions_and_keep_grad():
    torch.manual_seed(3)
    logits = torch.randn(2, 6, 13, requires_grad=True)
    ids = torch.randint(0, 13, (2, 6))
    logps, entropy = token_logps_and_entropy(logits, ids, chunk_size=4)
    expected = torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(logps, expected, atol=1e-6)
    assert torch.allclose(entropy, token_entropy(logits.detach()), atol=1e-6)
    assert not entropy.requires_grad
    logps.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_logps_without_entropy_and_bad_ids():
    logits = torch.zeros(1, 3, 4)
    logps, entropy = token_logps_and_entropy(logits, torch.tensor([[0, 1, 3]]), with_entropy=False)
    assert entropy is None and torch.allclose(logps, torch.full((1, 3), -math.log(4)))
    with pytest.raises(ValueError, match=r"token_ids must lie in \[0, 4\)"):
        token_logps_and_entropy(logits, torch.tensor([[0, -100, 1]]))
    with pytest.raises(ValueError, match="token_ids must have shape"):
        token_logps_and_entropy(logits, torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="integer tensor"):
        token_logps_and_entropy(logits, torch.zeros(1, 3))
