"""The adapter's root-forward path (what runs under FSDP), on one process without sharding: it
gives the fast path's scores, log-probs and gradients, and runs the same passes for every prompt.

``tests/models/test_fsdp.py`` runs the same path on a model sharded over two processes.
"""

from __future__ import annotations

import pytest
import torch

from videoktr import KeyTokenAttributor
from videoktr.models import get_adapter
from videoktr.models.tiny import FAMILIES, build_tiny_model

from .test_attribution import (
    assert_close_on_mask,
    make_completions,
    make_video,
    plain_logps,
    process,
)

ATOL = 1e-5
MODES = [("zero_embeddings", "permute_groups"), ("zero_pixels", "raw_frames"), ("drop_tokens", "permute_groups")]


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    model, processor = build_tiny_model(request.param, seed=0)
    return request.param, model, processor


def root_attributor(model, processor, **options) -> KeyTokenAttributor:
    attributor = KeyTokenAttributor(model, processor, **options)
    attributor.adapter.root_forward = True
    return attributor


def test_unsharded_models_use_the_fast_path(family_model):
    _, model, _ = family_model
    assert get_adapter(model).root_forward is False
    assert get_adapter(model).lockstep is False
    assert type(get_adapter(model))(model, root_forward=True).lockstep is True


def test_zero3_partitioned_models_use_the_root_forward_path():
    """DeepSpeed ZeRO-3 marks each partitioned parameter with ``ds_id`` (deepspeed is not a
    dependency here, so the mark is set by hand on a fresh tiny model)."""
    model, _ = build_tiny_model("qwen2_5_vl", seed=0)
    assert get_adapter(model).root_forward is False
    for index, parameter in enumerate(model.parameters()):
        parameter.ds_id = index
    adapter = get_adapter(model)
    assert adapter.root_forward is True and adapter.lockstep is True


@pytest.mark.parametrize(("visual_mode", "temporal_mode"), MODES)
def test_root_forward_scores_equal_the_fast_path(family_model, visual_mode, temporal_mode):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    options = {"visual_mode": visual_mode, "temporal_mode": temporal_mode, "num_shuffles": 2, "seed": 3, "signed": True, "chunk_size": 4}
    fast = KeyTokenAttributor(model, processor, **options).score(inputs, ids, mask)
    attributor = root_attributor(model, processor, **options)
    root = attributor.score(inputs, ids, mask)
    assert set(root) == set(fast)
    for name in ("logps", "visual", "temporal", "entropy"):
        assert_close_on_mask(root[name], fast[name], mask, atol=ATOL)
    assert torch.equal(root["permutation"], fast["permutation"])
    assert_close_on_mask(root["logps"], plain_logps(model, inputs, ids), mask, atol=1e-4)
    # the video is encoded once, and again only by the counterfactuals that re-encode by definition
    assert attributor.adapter.encoder_calls == (1 if visual_mode != "zero_pixels" else 4)


def test_root_forward_scores_images_like_the_fast_path(family_model):
    _, model, processor = family_model
    image = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    inputs = process(processor, image=image)
    ids, mask = make_completions(model)
    fast = KeyTokenAttributor(model, processor).score(inputs, ids, mask)
    root = root_attributor(model, processor).score(inputs, ids, mask)
    for name in ("logps", "visual", "entropy"):
        assert_close_on_mask(root[name], fast[name], mask, atol=ATOL)
    assert torch.isnan(root["temporal"]).all() and root["permutation"] is None


def passes(model, processor, inputs, ids, mask, **options) -> list[tuple[str, bool]]:
    """Every root forward of one ``score`` call: (prompt or completions-on-cache, whether the
    vision encoder runs in it)."""
    signature = []
    attributor = root_attributor(model, processor, **options)
    root = attributor.adapter.model

    def recording_root(**kwargs):
        kind = "completions" if kwargs.get("cache") is not None else "prompt"
        signature.append((kind, "pixel_values" in kwargs or "pixel_values_videos" in kwargs))
        return root(**kwargs)

    attributor.adapter.model = recording_root
    attributor.score(inputs, ids, mask)
    return signature


@pytest.mark.parametrize("temporal_mode", ["permute_groups", "raw_frames"])
def test_every_prompt_runs_the_same_root_forwards(family_model, temporal_mode):
    """Under FSDP the processes' collectives pair up: an image (no temporal signal) or a video of
    one temporal group must run the same sequence of root forwards as a video, the vision
    encoder included or excluded alike."""
    _, model, processor = family_model
    ids, mask = make_completions(model)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    options = {"temporal_mode": temporal_mode, "num_shuffles": 2}
    video = passes(model, processor, process(processor, video=make_video(0)), ids, mask, **options)
    assert len(video) == 2 * (1 + 1 + 2)  # prompt + completions for: real, visual, two shuffles
    for inputs in (process(processor, image=image), process(processor, video=make_video(0, frames=2))):
        assert passes(model, processor, inputs, ids, mask, **options) == video


@pytest.mark.parametrize("share_prefix", [True, False])
def test_root_forward_training_logps_and_gradients_equal_the_fast_path(family_model, share_prefix):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, mask = make_completions(model)
    adapter = get_adapter(model)
    results = []
    for root_forward in (False, True):
        adapter.root_forward = root_forward
        model.zero_grad()
        logps = adapter.policy_logps(model, adapter.prepare(inputs), ids, chunk_size=4, share_prefix=share_prefix)
        (logps * mask).sum().backward()
        results.append((logps.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}))
    model.zero_grad()
    (fast, fast_grads), (root, root_grads) = results
    assert_close_on_mask(root, fast, mask, atol=ATOL)
    assert root_grads.keys() == fast_grads.keys()
    for name, grad in fast_grads.items():
        assert torch.allclose(root_grads[name], grad, atol=ATOL), name
    assert any(grad.abs().sum() > 0 for name, grad in root_grads.items() if "visual" in name)


def test_full_sequence_root_forward_encodes_the_video_once(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0))
    ids, _ = make_completions(model)
    adapter = type(get_adapter(model))(model, root_forward=True)
    calls = []
    handle = model.model.visual.register_forward_hook(lambda *args: calls.append(1))
    try:
        adapter.policy_logps(model, adapter.prepare(inputs), ids, chunk_size=None, share_prefix=False)
    finally:
        handle.remove()
    assert len(calls) == 1
    assert not model.model.visual._forward_hooks and not model.model.visual._forward_pre_hooks  # hooks removed
