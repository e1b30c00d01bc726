"""The vision encoder in chunks of temporal groups equals one call, on all three families: the
merged embeddings, Qwen3-VL's deepstack features, the scores built on them, and the gradient."""

import pytest
import torch

from videoktr import KeyTokenAttributor
from videoktr.models import get_adapter, set_encoder_chunking
from videoktr.models.tiny import FAMILIES, build_tiny_model

from .test_attribution import make_completions, make_video, process


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    model, processor = build_tiny_model(request.param, seed=0)
    return request.param, model, processor


def _flat(output):
    tensors = list(output.pooler_output)
    for layer in getattr(output, "deepstack_features", None) or ():
        tensors.extend(layer)
    return tensors


@pytest.mark.parametrize("chunk", [1, 3, 5])
def test_chunked_encoding_equals_one_call(family_model, chunk):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(0, frames=10))  # 5 temporal groups: chunks of 1, 3 + 2, 5
    adapter = get_adapter(model)
    prompt = adapter.prepare(inputs)
    assert int(prompt.video_grid_thw[0, 0]) == 5
    with torch.no_grad():
        whole = adapter.encode_video(prompt.pixel_values_videos, prompt.video_grid_thw)
        set_encoder_chunking(model, chunk)
        try:
            chunked_adapter = get_adapter(model)
            assert chunked_adapter.encoder_chunk_groups == chunk
            calls = []
            handle = model.model.visual.register_forward_pre_hook(lambda *unused: calls.append(1))
            chunked = chunked_adapter.encode_video(prompt.pixel_values_videos, prompt.video_grid_thw)
            handle.remove()
        finally:
            set_encoder_chunking(model, None)
    assert len(calls) == -(-5 // chunk)
    assert type(chunked) is type(whole) and len(_flat(chunked)) == len(_flat(whole))
    for ours, theirs in zip(_flat(chunked), _flat(whole)):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_chunked_scores_and_gradients_equal_unchunked(family_model):
    _, model, processor = family_model
    inputs = process(processor, video=make_video(1, frames=8))
    ids, mask = make_completions(model)
    expected = KeyTokenAttributor(model, processor, seed=3).score(inputs, ids, mask)

    def grads():
        model.zero_grad()
        adapter = get_adapter(model)
        adapter.policy_logps(model, adapter.prepare(inputs), ids, chunk_size=4)[mask].sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if ".visual." in f".{name}"}

    unchunked_grads = grads()
    set_encoder_chunking(model, 1)
    try:
        out = KeyTokenAttributor(model, processor, seed=3).score(inputs, ids, mask)
        calls = []
        handle = model.model.visual.register_forward_pre_hook(lambda *unused: calls.append(1))
        chunked_grads = grads()
        handle.remove()
    finally:
        set_encoder_chunking(model, None)
        model.zero_grad()
    assert len(calls) == 2 * 4  # 4 groups, each checkpointed: encoded again in the backward pass
    for name in ("logps", "visual", "temporal", "entropy"):
        torch.testing.assert_close(out[name], expected[name], atol=1e-5, rtol=1e-4, equal_nan=True)
    for name, grad in unchunked_grads.items():
        torch.testing.assert_close(chunked_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_a_bad_chunk_size_is_refused():
    model, _ = build_tiny_model("qwen2_vl", seed=0)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive int or None"):
            set_encoder_chunking(model, bad)
