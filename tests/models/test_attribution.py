"""KeyTokenAttributor on tiny Qwen2-VL, Qwen2.5-VL and Qwen3-VL models: every cheap path
equals the plain computation it replaces.

The references here run the model the plain way: one full forward of prompt + completion per
completion batch, the processor re-run on permuted frames, the encoder output replaced by a
forward hook. None of them use the adapter's code.
"""

from __future__ import annotations

import math

import pytest
import torch

from videoktr import KeyTokenAttributor
from videoktr.core.permutations import sample_derangements
from videoktr.models.tiny import FAMILIES, build_tiny_model

NUM_FRAMES = 8  # 4 temporal groups of 2 frames
G, T = 3, 6
ATOL = 1e-4


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    model, processor = build_tiny_model(request.param, seed=0)
    return request.param, model, processor


def make_video(seed: int, frames: int = NUM_FRAMES) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (frames, 3, 64, 64), generator=gen, dtype=torch.uint8)


def process(processor, video=None, image=None, question="Which shape moved first?"):
    item = {"type": "video"} if video is not None else {"type": "image"}
    messages = [{"role": "user", "content": [item, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    kwargs = {}
    if video is not None:
        kwargs["videos"] = [video]
        kwargs["video_metadata"] = [{"fps": 2.0, "total_num_frames": video.shape[0], "frames_indices": list(range(video.shape[0]))}]
        kwargs["do_sample_frames"] = False
    if image is not None:
        kwargs["images"] = [image]
    return processor(text=[text], return_tensors="pt", **kwargs)


def make_completions(model, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.text_config.vocab_size
    ids = torch.randint(0, vocab, (G, T), generator=gen)
    mask = torch.ones(G, T, dtype=torch.bool)
    mask[1, 4:] = False  # a shorter completion, right-padded
    mask[2, 2:] = False
    return ids, mask


@torch.no_grad()
def plain_logps(model, inputs, completion_ids, drop_keys=()):
    """One full forward of [prompt + completion] for every completion, full logits."""
    prompt_ids = inputs["input_ids"]
    num, length = completion_ids.shape
    prompt_length = prompt_ids.shape[1]
    kwargs = {key: value for key, value in inputs.items() if key not in ("input_ids", "attention_mask", *drop_keys)}
    full_ids = torch.cat([prompt_ids.expand(num, -1), completion_ids], dim=1)
    if "mm_token_type_ids" in kwargs:
        types = kwargs.pop("mm_token_type_ids")
        kwargs["mm_token_type_ids"] = torch.cat([types.expand(num, -1), types.new_zeros(num, length)], dim=1)
    for key in ("pixel_values_videos", "pixel_values"):
        if key in kwargs:
            kwargs[key] = kwargs[key].repeat(num, 1)
    for key in ("video_grid_thw", "image_grid_thw"):
        if key in kwargs:
            kwargs[key] = kwargs[key].repeat(num, 1)
    if "second_per_grid_ts" in kwargs:
        kwargs["second_per_grid_ts"] = kwargs["second_per_grid_ts"].repeat(num)
    logits = model(input_ids=full_ids, **kwargs).logits.float()
    log_probs = torch.log_softmax(logits[:, prompt_length - 1 : -1], dim=-1)
    return log_probs.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


def assert_close_on_mask(actual, expected, mask, atol=ATOL):
    diff = (actual - expected)[mask].abs().max().item()
    assert diff <= atol, f"max |diff| {diff:.2e} > {atol}"


def permute_groups_of_frames(video: torch.Tensor, order: torch.Tensor, group: int = 2) -> torch.Tensor:
    return video.reshape(-1, group, *video.shape[1:])[order].reshape(video.shape)


# ---------------------------------------------------------------- the real pass


def test_prefix_shared_scoring_equals_plain_full_forward(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor).score(inputs, ids, mask)
    assert_close_on_mask(out["logps"], plain_logps(model, inputs, ids), mask)
    assert (out["logps"][~mask] == 0).all()


def test_entropy_comes_from_the_real_pass(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor, signals=("entropy",)).score(inputs, ids, mask)
    with torch.no_grad():
        full_ids = torch.cat([inputs["input_ids"][:, :], ids[:1]], dim=1)
        types = torch.cat([inputs["mm_token_type_ids"], torch.zeros(1, T, dtype=torch.long)], dim=1)
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
        logits = model(input_ids=full_ids, mm_token_type_ids=types, **extra).logits[0].float()
    prompt_length = inputs["input_ids"].shape[1]
    expected = torch.distributions.Categorical(logits=logits[prompt_length - 1 : -1]).entropy()
    assert torch.allclose(out["entropy"][0], expected, atol=ATOL)
    assert set(out) == {"logps", "entropy"}


def test_gradient_weight_is_the_squared_norm_of_the_autograd_gradient(family_model):
    """g_t from the scoring pass equals || d log p(y_t) / d z_t ||^2, with z_t the logits of a
    plain full forward of the tiny model and the gradient taken by autograd."""
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor, signals=(), gradient_weight=True).score(inputs, ids, mask)
    full_ids = torch.cat([inputs["input_ids"], ids[:1]], dim=1)
    types = torch.cat([inputs["mm_token_type_ids"], torch.zeros(1, T, dtype=torch.long)], dim=1)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
    with torch.no_grad():
        logits = model(input_ids=full_ids, mm_token_type_ids=types, **extra).logits[0].float()
    prompt_length = inputs["input_ids"].shape[1]
    completion_logits = logits[prompt_length - 1 : -1].clone().requires_grad_()
    log_probs = torch.log_softmax(completion_logits, dim=-1)
    for t in range(T):
        (grad,) = torch.autograd.grad(log_probs[t, ids[0, t]], completion_logits, retain_graph=True)
        assert out["gradient_weight"][0, t].item() == pytest.approx(grad.square().sum().item(), abs=ATOL)
    assert (out["gradient_weight"][~mask] == 0).all() and set(out) == {"logps", "gradient_weight"}


@pytest.mark.parametrize("chunk_size", [1, 5, None])
def test_chunked_equals_unchunked(family_model, chunk_size):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    reference = KeyTokenAttributor(model, processor, chunk_size=10_000, seed=3).score(inputs, ids, mask)
    chunked = KeyTokenAttributor(model, processor, chunk_size=chunk_size, seed=3).score(inputs, ids, mask)
    for name in ("logps", "visual", "temporal", "entropy"):
        assert torch.allclose(chunked[name], reference[name], atol=1e-6), name


def test_no_full_vocabulary_logits_tensor_is_built(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    rows_seen = []
    handle = model.get_output_embeddings().register_forward_hook(
        lambda module, args, output: rows_seen.append(output.reshape(-1, output.shape[-1]).shape[0])
    )
    try:
        KeyTokenAttributor(model, processor, chunk_size=4).score(inputs, ids, mask)
    finally:
        handle.remove()
    assert rows_seen and max(rows_seen) <= 4


def test_vision_encoder_runs_once_per_prompt(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    calls = []
    handle = model.model.visual.register_forward_hook(lambda *args: calls.append(1))
    try:
        KeyTokenAttributor(model, processor, num_shuffles=3).score(inputs, ids, mask)
        assert len(calls) == 1
        calls.clear()
        KeyTokenAttributor(model, processor, temporal_mode="raw_frames", num_shuffles=2).score(inputs, ids, mask)
        assert len(calls) == 3  # the real video and one re-encoding per shuffle
    finally:
        handle.remove()


# ---------------------------------------------------------------- temporal counterfactuals


def test_permute_groups_equals_reprocessing_permuted_frames(family_model):
    _, model, processor = family_model
    video = make_video(0)
    inputs = process(processor, video=video)
    ids, mask = make_completions(model)
    attributor = KeyTokenAttributor(model, processor, seed=5)
    out = attributor.score(inputs, ids, mask)
    order = out["permutation"]
    assert order.shape == (NUM_FRAMES // 2,)
    shuffled_inputs = process(processor, video=permute_groups_of_frames(video, order))
    assert torch.equal(shuffled_inputs["input_ids"], inputs["input_ids"])  # timestamps and grid unchanged
    shuffled = plain_logps(model, shuffled_inputs, ids)
    real = plain_logps(model, inputs, ids)
    assert_close_on_mask(out["temporal"], (real - shuffled).abs(), mask)
    assert out["temporal"][mask].abs().max() > 1e-5, "the shuffle changed nothing: the test would be vacuous"


def test_raw_frames_equals_reprocessing_frame_permuted_video(family_model):
    _, model, processor = family_model
    video = make_video(0)
    inputs = process(processor, video=video)
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor, temporal_mode="raw_frames", seed=7).score(inputs, ids, mask)
    order = out["permutation"]
    assert order.shape == (NUM_FRAMES,) and not bool((order == torch.arange(NUM_FRAMES)).any())
    shuffled = plain_logps(model, process(processor, video=video[order]), ids)
    assert_close_on_mask(out["temporal"], (plain_logps(model, inputs, ids) - shuffled).abs(), mask)


def test_num_shuffles_averages_the_deltas_of_distinct_derangements(family_model):
    _, model, processor = family_model
    video = make_video(0)
    inputs = process(processor, video=video)
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor, num_shuffles=3, seed=11, signed=True).score(inputs, ids, mask)
    orders = out["permutation"]
    assert orders.shape == (3, NUM_FRAMES // 2)
    assert len({tuple(order.tolist()) for order in orders}) == 3
    real = plain_logps(model, inputs, ids)
    expected = torch.stack(
        [real - plain_logps(model, process(processor, video=permute_groups_of_frames(video, o)), ids) for o in orders]
    ).mean(0)
    assert_close_on_mask(out["temporal"], expected, mask)


def test_fixed_seed_gives_the_same_permutation_and_scores(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    first = KeyTokenAttributor(model, processor, seed=42).score(inputs, ids, mask)
    second = KeyTokenAttributor(model, processor, seed=42).score(inputs, ids, mask)
    assert torch.equal(first["permutation"], second["permutation"])
    assert torch.equal(first["temporal"], second["temporal"])


@pytest.mark.parametrize("media", ["video", "image"])
def test_scoring_from_the_callers_real_pass_equals_score(family_model, media):
    """``counterfactual_logps`` + ``score_from_real`` (the trainer's loss forward gives the real
    pass, with gradient) equal ``score``: the same permutation, scores and NaN rules."""
    _, model, processor = family_model
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    inputs = process(processor, video=make_video(0)) if media == "video" else process(processor, image=image)
    ids, mask = make_completions(model)
    kwargs = dict(num_shuffles=2, seed=7, gradient_weight=True, temperature=0.7)
    expected = KeyTokenAttributor(model, processor, **kwargs).score(inputs, ids, mask)
    attributor = KeyTokenAttributor(model, processor, **kwargs)
    adapter = attributor.adapter
    prompt = adapter.prepare(inputs)
    features = adapter.encode(prompt)
    detached = {key: adapter.map_features(output, torch.Tensor.detach) for key, output in features.items()}
    counterfactuals = attributor.counterfactual_logps(inputs, ids, mask, detached)
    real = adapter.policy_log_stats(model, prompt, ids, chunk_size=4, temperature=0.7, with_entropy=True,
                                    with_gradient_weight=True, features=features)
    assert real.logps.requires_grad
    out = attributor.score_from_real(real, counterfactuals, mask)
    assert out.keys() == expected.keys()
    if media == "video":
        assert torch.equal(out["permutation"], expected["permutation"])
    else:
        assert out["permutation"] is None and torch.isnan(out["temporal"]).all()
    for name in ("logps", "visual", "temporal", "entropy", "gradient_weight"):
        assert not out[name].requires_grad
        torch.testing.assert_close(out[name], expected[name], atol=ATOL, rtol=1e-4, equal_nan=True)
    with pytest.raises(ValueError, match="entropy"):
        attributor.score_from_real(real._replace(entropy=None), counterfactuals, mask)


def test_images_and_single_group_videos_have_no_temporal_signal(family_model):
    _, model, processor = family_model
    ids, mask = make_completions(model)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    for inputs in (process(processor, image=image), process(processor, video=make_video(0, frames=2))):
        out = KeyTokenAttributor(model, processor).score(inputs, ids, mask)
        assert out["permutation"] is None
        assert torch.isnan(out["temporal"]).all()
        assert torch.isfinite(out["visual"]).all() and out["visual"][mask].abs().max() > 0


# ---------------------------------------------------------------- visual counterfactuals


def test_zero_embeddings_equals_zeroing_the_encoder_output(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor, signed=True).score(inputs, ids, mask)

    def zero_output(module, args, output):
        output.pooler_output = torch.zeros_like(output.pooler_output)
        if getattr(output, "deepstack_features", None) is not None:
            output.deepstack_features = [torch.zeros_like(f) for f in output.deepstack_features]
        return output

    handle = model.model.visual.register_forward_hook(zero_output)
    try:
        no_video = plain_logps(model, inputs, ids)
    finally:
        handle.remove()
    assert_close_on_mask(out["visual"], plain_logps(model, inputs, ids) - no_video, mask)
    assert out["visual"][mask].abs().max() > 1e-4, "removing the video changed nothing: the test would be vacuous"


def test_drop_tokens_equals_the_official_attention_mask_removal(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor, visual_mode="drop_tokens", signed=True).score(inputs, ids, mask)
    # Official: attention mask 0 on the video tokens, and get_rope_index (which skips masked
    # tokens, finds no video left, and numbers the rest as text) gives positions 0, 1, 2, ...
    # to the unmasked tokens.
    prompt_length = inputs["input_ids"].shape[1]
    is_video = inputs["input_ids"][0] == model.config.video_token_id
    attention = torch.ones(G, prompt_length + T, dtype=torch.long)
    attention[:, :prompt_length][:, is_video] = 0
    positions = (attention.cumsum(-1) - 1).clamp(min=0).unsqueeze(0).expand(3, -1, -1)
    with torch.no_grad():
        full_ids = torch.cat([inputs["input_ids"].expand(G, -1), ids], dim=1)
        logits = model(input_ids=full_ids, attention_mask=attention, position_ids=positions).logits.float()
    official = torch.log_softmax(logits[:, prompt_length - 1 : -1], -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    assert_close_on_mask(out["visual"], plain_logps(model, inputs, ids) - official, mask)


def test_zero_pixels_equals_a_forward_on_zeroed_pixels(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    out = KeyTokenAttributor(model, processor, visual_mode="zero_pixels", signed=True).score(inputs, ids, mask)
    zeroed = dict(inputs)
    zeroed["pixel_values_videos"] = torch.zeros_like(inputs["pixel_values_videos"])
    expected = plain_logps(model, inputs, ids) - plain_logps(model, zeroed, ids)
    assert_close_on_mask(out["visual"], expected, mask)


# ---------------------------------------------------------------- selection and errors


def test_select_is_the_union_of_each_signals_top_k(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    attributor = KeyTokenAttributor(model, processor)
    scores = attributor.score(inputs, ids, mask)
    key_tokens = attributor.select(scores, mask, ratio=0.25)
    n = int(mask.sum())
    k = math.ceil(0.25 * n - 1e-6)
    union = torch.zeros_like(mask)
    for name in ("visual", "temporal", "entropy"):
        single = attributor.select(scores, mask, ratio=0.25, signals=[name])
        assert int(single.sum()) == k
        union |= single
    assert torch.equal(key_tokens, union) and not (key_tokens & ~mask).any()


def test_errors_are_clear(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    with pytest.raises(ValueError, match="visual_mode must be one of zero_embeddings, drop_tokens, zero_pixels"):
        KeyTokenAttributor(model, processor, visual_mode="blur")
    with pytest.raises(ValueError, match="temporal_mode must be one of permute_groups, raw_frames"):
        KeyTokenAttributor(model, processor, temporal_mode="reverse")
    with pytest.raises(ValueError, match="num_shuffles must be a positive int"):
        KeyTokenAttributor(model, processor, num_shuffles=0)
    attributor = KeyTokenAttributor(model, processor)
    two_prompts = dict(inputs)
    two_prompts["input_ids"] = inputs["input_ids"].repeat(2, 1)
    with pytest.raises(ValueError, match=r"ONE prompt: input_ids of shape \[1, P\]"):
        attributor.score(two_prompts, ids, mask)
    with pytest.raises(ValueError, match=r"completion_ids must lie in \[0, "):
        attributor.score(inputs, ids.masked_fill(~mask, -100), mask)
    with pytest.raises(ValueError, match=r"completion_mask must have shape \(3, 6\)"):
        attributor.score(inputs, ids, mask[:, :3])
    with pytest.raises(ValueError, match="no adapter for model_type"):
        KeyTokenAttributor(torch.nn.Linear(2, 2))


def test_derangements_never_return_the_identity_and_follow_the_seed():
    for n in range(2, 9):
        perms = sample_derangements(n, count=5, generator=torch.Generator().manual_seed(n))
        assert not bool((perms == torch.arange(n)).any())
        assert len({tuple(p.tolist()) for p in perms}) == len(perms)
        again = sample_derangements(n, count=5, generator=torch.Generator().manual_seed(n))
        assert torch.equal(perms, again)
    assert sample_derangements(2, count=4).tolist() == [[1, 0]]  # the only derangement of 2
    assert len(sample_derangements(3, count=4)) == 2
    with pytest.raises(ValueError, match="num_items must be an int >= 2"):
        sample_derangements(1)


def test_training_forward_shares_the_prefix_with_the_same_gradients(family_model):
    """policy_logps with the shared prefix equals the full-sequence path (used under activation
    checkpointing) and a plain forward, gradients included, and reaches the vision encoder."""
    from videoktr.models import get_adapter

    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    adapter = get_adapter(model)
    results = []
    for share_prefix in (True, False):
        model.zero_grad()
        logps = adapter.policy_logps(model, adapter.prepare(inputs), ids, chunk_size=4, share_prefix=share_prefix)
        (logps * mask).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((logps.detach(), grads))
    model.zero_grad()
    (shared, shared_grads), (full, full_grads) = results
    assert_close_on_mask(shared, plain_logps(model, inputs, ids), mask)
    assert_close_on_mask(shared, full, mask, atol=1e-5)
    assert shared_grads.keys() == full_grads.keys()
    for name, grad in shared_grads.items():
        assert torch.allclose(grad, full_grads[name], atol=1e-5), name
    assert any(grad.abs().sum() > 0 for name, grad in shared_grads.items() if "visual" in name)
