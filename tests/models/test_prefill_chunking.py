"""The prompt prefilled in chunks of tokens equals one call, on all three families (scores of
every signal and the training pass's gradients), and the completions read the prompt's KV
cache without copies of it."""

import pytest
import torch
from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

from videoktr import KeyTokenAttributor
from videoktr.models import get_adapter, set_prefill_chunking
from videoktr.models.cached_prefix import packed_completion_mask, share_cache
from videoktr.models.tiny import FAMILIES, build_tiny_model

from .test_attribution import make_completions, make_video, process


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    model, processor = build_tiny_model(request.param, seed=0)
    return request.param, model, processor


def _decoder_calls(model):
    calls = []
    handle = model.model.language_model.register_forward_pre_hook(lambda *unused: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("media", ["video", "image"])
def test_chunked_prefill_scores_equal_one_call(family_model, media):
    _, model, processor = family_model
    inputs = (process(processor, video=make_video(2, frames=8)) if media == "video"
              else process(processor, image=make_video(2, frames=1)[0]))
    ids, mask = make_completions(model)
    expected = KeyTokenAttributor(model, processor, seed=5).score(inputs, ids, mask)
    prompt_length = inputs["input_ids"].shape[1]
    visual_tokens = int((inputs["mm_token_type_ids"] > 0).sum())
    # 3 splits the visual tokens mid-run; prompt_length - 1 leaves a one-token chunk.
    for chunk in (3, prompt_length - 1):
        assert visual_tokens > chunk or chunk == prompt_length - 1
        set_prefill_chunking(model, chunk)
        try:
            calls, handle = _decoder_calls(model)
            out = KeyTokenAttributor(model, processor, seed=5).score(inputs, ids, mask)
            handle.remove()
        finally:
            set_prefill_chunking(model, None)
        passes = 3 if media == "video" else 2  # real, visual[, temporal]: each a prefix + the completions
        assert len(calls) == passes * (-(-prompt_length // chunk) + 1)
        for name in ("logps", "visual", "temporal", "entropy"):
            torch.testing.assert_close(out[name], expected[name], atol=1e-5, rtol=1e-4, equal_nan=True, msg=name)


def test_chunked_prefill_training_pass_has_the_same_gradients(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(3, frames=8))
    ids, mask = make_completions(model)

    def logps_and_grads():
        model.zero_grad()
        adapter = get_adapter(model)
        logps = adapter.policy_logps(model, adapter.prepare(inputs), ids, chunk_size=4)
        logps[mask].sum().backward()
        return logps.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    expected_logps, expected_grads = logps_and_grads()
    set_prefill_chunking(model, 5)
    try:
        calls, handle = _decoder_calls(model)
        logps, grads = logps_and_grads()
        handle.remove()
    finally:
        set_prefill_chunking(model, None)
        model.zero_grad()
    chunks = -(-inputs["input_ids"].shape[1] // 5)
    assert len(calls) == 2 * chunks + 1  # each chunk checkpointed: run again in the backward pass
    torch.testing.assert_close(logps, expected_logps, atol=1e-5, rtol=1e-4)
    assert any(".visual." in name for name in grads)
    for name, grad in expected_grads.items():
        # A parameter that only reaches hidden states no later position reads (Qwen3-VL's last
        # deepstack merger, added after the last layer it feeds) gets a zero gradient from one
        # call and none from chunks, whose non-final outputs are dropped.
        torch.testing.assert_close(grads.get(name, torch.zeros_like(grad)), grad, atol=1e-5, rtol=1e-4, msg=name)


def _layer(cls, batch=1, length=6, **kwargs):
    layer = cls(**kwargs)
    states = torch.randn(batch, 2, length, 4)
    layer.update(states, states.clone())
    return layer


def test_the_completions_share_the_prompts_cache_without_copying_it():
    cache = DynamicCache()
    cache.layers = [_layer(DynamicLayer), _layer(DynamicLayer)]
    prompt_keys = cache.layers[0].keys
    shared = share_cache(cache, num_completions=3)
    assert all(layer.keys.shape[0] == 1 for layer in shared.layers)  # still the prompt's batch of 1
    assert shared.layers[0].keys.data_ptr() == prompt_keys.data_ptr()
    new_keys = torch.randn(3, 2, 2, 4)
    keys, values = shared.update(new_keys, new_keys.clone(), 0)
    expected = torch.cat([prompt_keys.expand(3, -1, -1, -1), new_keys], dim=-2)
    torch.testing.assert_close(keys, expected)
    assert shared.get_seq_length(0) == 6  # nothing stored: the mask still sees the prompt's length
    assert shared.layers[0].keys.shape == (1, 2, 6, 4)


def test_a_cache_with_other_layers_is_repeated_instead():
    cache = DynamicCache()
    cache.layers = [_layer(DynamicLayer), _layer(DynamicSlidingWindowLayer, sliding_window=16)]
    shared = share_cache(cache, num_completions=3)
    assert [layer.keys.shape[0] for layer in shared.layers] == [3, 3]


def test_a_bad_chunk_size_is_refused():
    model, _ = build_tiny_model("qwen2_vl", seed=0)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="prefill chunk tokens must be a positive int or None"):
            set_prefill_chunking(model, bad)


def test_packed_completion_mask_by_hand():
    mask = packed_completion_mask(num_completions=2, length=3, prompt_length=2)[0, 0].int()
    expected = torch.tensor([
        # prompt  completion 0  completion 1
        [1, 1,    1, 0, 0,      0, 0, 0],
        [1, 1,    1, 1, 0,      0, 0, 0],
        [1, 1,    1, 1, 1,      0, 0, 0],
        [1, 1,    0, 0, 0,      1, 0, 0],
        [1, 1,    0, 0, 0,      1, 1, 0],
        [1, 1,    0, 0, 0,      1, 1, 1],
    ])
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("implementation", ["eager", "flash_attention_2"])
def test_packing_follows_the_attention_implementation(implementation):
    """eager gets the mask as additive scores and packs like sdpa; an attention that takes no
    arbitrary mask (flash_attention_2, not runnable here) runs the completions as a batch."""
    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    inputs = process(processor, video=make_video(4, frames=8))
    ids, mask = make_completions(model)
    expected = KeyTokenAttributor(model, processor, seed=1).score(inputs, ids, mask)
    set_prefill_chunking(model, 6)
    strategy = get_adapter(model).strategy
    assert strategy._packs_completions()
    if implementation == "eager":
        model.set_attn_implementation("eager")
        assert get_adapter(model).strategy._packs_completions()
        out = KeyTokenAttributor(model, processor, seed=1).score(inputs, ids, mask)
        for name in ("logps", "visual", "temporal"):
            torch.testing.assert_close(out[name], expected[name], atol=1e-5, rtol=1e-4, equal_nan=True, msg=name)
    else:
        model.model.language_model.config._attn_implementation = implementation
        assert not get_adapter(model).strategy._packs_completions()


def test_a_repeated_prompt_cache_runs_the_completions_as_a_batch():
    """A prompt cache that share_cache had to repeat (sliding-window layers) has the batch of
    the completions: they then run as a batch even with packing on, and give the same states."""
    model, processor = build_tiny_model("qwen2_vl", seed=0)
    adapter = get_adapter(model)
    prompt = adapter.prepare(process(processor, video=make_video(5, frames=4)))
    ids, _ = make_completions(model)
    variant = adapter.real_variant(prompt, adapter.encode(prompt))
    positions = adapter.rope_positions(variant, ids.shape[1])
    prompt_length = prompt.input_ids.shape[1]

    def completions(repeat: bool):
        with torch.no_grad():
            out = adapter.inner(input_ids=prompt.input_ids, position_ids=positions[:, :, :prompt_length],
                                mm_encoder_outputs=variant.encoder_outputs, use_cache=True)
            cache = out.cache
            if repeat:
                cache.batch_repeat_interleave(ids.shape[0])
            else:
                cache = share_cache(cache, ids.shape[0])
            strategy = get_adapter(model).strategy
            assert strategy._packs_completions(cache) is not repeat
            return strategy._completions(adapter.inner, cache, ids, positions[:, :, prompt_length:],
                                         "last_hidden_state")

    set_prefill_chunking(model, 1000)
    try:
        torch.testing.assert_close(completions(repeat=True), completions(repeat=False), atol=1e-5, rtol=1e-4)
    finally:
        set_prefill_chunking(model, None)
