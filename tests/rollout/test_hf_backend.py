"""The hf backend: a micro-batch's prompts sampled in one left-padded generate call."""

import pytest
import torch

from videoktr.models.generation import (
    generate_batch_completions,
    generate_completions,
    left_pad_prompt_inputs,
)
from videoktr.models.tiny import build_tiny_model
from videoktr.rollout import HFRolloutBackend, SamplingSettings

from .helpers import requests_for


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model("qwen2_5_vl", seed=0)


def test_left_padding_aligns_the_prompts_ends_and_concatenates_the_media(tiny):
    _, processor = tiny
    requests = requests_for(processor)
    inputs = [request.prompt_inputs for request in requests]
    batch = left_pad_prompt_inputs(inputs, pad_token_id=7)
    lengths = [int(item["input_ids"].shape[1]) for item in inputs]
    assert batch["input_ids"].shape == (3, max(lengths))
    for row, (item, length) in enumerate(zip(inputs, lengths)):
        assert torch.equal(batch["input_ids"][row, -length:], item["input_ids"][0])
        assert (batch["input_ids"][row, : max(lengths) - length] == 7).all()
        assert batch["attention_mask"][row].sum() == length
    assert torch.equal(batch["video_grid_thw"], torch.cat([inputs[0]["video_grid_thw"], inputs[1]["video_grid_thw"]]))
    assert torch.equal(batch["pixel_values"], inputs[2]["pixel_values"])
    assert left_pad_prompt_inputs(inputs[:1], 7).keys() == inputs[0].keys()


def test_greedy_batched_completions_equal_each_prompts_own(tiny):
    model, processor = tiny
    requests = requests_for(processor)
    batched = generate_batch_completions(model, processor, [r.prompt_inputs for r in requests], 1, 10, temperature=0)
    for request, (ids, mask) in zip(requests, batched):
        alone_ids, alone_mask = generate_completions(model, processor, request.prompt_inputs, 1, 10, temperature=0)
        assert torch.equal(ids, alone_ids) and torch.equal(mask, alone_mask)


def test_one_prompt_samples_exactly_what_generate_completions_samples_under_its_seed(tiny):
    model, processor = tiny
    (request,) = requests_for(processor, seed=11)[:1]
    backend = HFRolloutBackend(lambda: model, processor)
    settings = SamplingSettings(num_generations=4, max_completion_length=12, temperature=1.0)
    (sampled,) = backend.sample([request], settings)
    torch.manual_seed(11)
    ids, mask = generate_completions(model, processor, request.prompt_inputs, 4, 12, temperature=1.0)
    assert torch.equal(sampled.completion_ids, ids) and torch.equal(sampled.completion_mask, mask)
    assert sampled.sampler_logps is None
    # Seeded inside a forked stream: the caller's global stream is not consumed.
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    backend.sample([request], settings)
    assert torch.equal(torch.rand(1), expected)


def test_batched_sampling_returns_each_prompts_group_with_its_own_length(tiny):
    model, processor = tiny
    requests = requests_for(processor)
    sampled = HFRolloutBackend(lambda: model, processor).sample(
        requests, SamplingSettings(num_generations=3, max_completion_length=9))
    assert len(sampled) == 3
    for completions in sampled:
        assert completions.completion_ids.shape[0] == 3
        assert completions.completion_ids.shape == completions.completion_mask.shape
        assert completions.completion_mask[:, -1].any()  # trimmed: the last column is used
