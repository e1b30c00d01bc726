"""The tiny Qwen-VL builders produce real, working model/processor pairs with nothing downloaded.

Everything downstream (rollouts, counterfactual passes, GRPO updates) is tested on these models,
so what is pinned here is what that code relies on: special tokens are single ids, the chat
template emits one placeholder per video, the real processor expands it to the grid's token
count, the model runs forward and generates, and a saved checkpoint loads back identically.
"""

import numpy as np
import pytest
import torch

from videoktr.models.tiny import (
    ANSWER_TOKENS,
    FAMILIES,
    SPECIAL_TOKENS,
    build_config,
    build_processor,
    build_tiny_model,
    build_tokenizer,
    save_tiny_model,
)

REAL_PROCESSORS = {
    "qwen2_vl": ("Qwen2VLProcessor", "Qwen2VLImageProcessor", "Qwen2VLVideoProcessor"),
    "qwen2_5_vl": ("Qwen2_5_VLProcessor", "Qwen2VLImageProcessor", "Qwen2VLVideoProcessor"),
    "qwen3_vl": ("Qwen3VLProcessor", "Qwen2VLImageProcessor", "Qwen3VLVideoProcessor"),
}
REAL_MODELS = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}
VIDEO_MESSAGES = [
    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves first?"}]}
]
NUM_FRAMES = 8
# The frame rate of the frames as passed; without it Qwen2.5-VL/Qwen3-VL assume 24 fps.
METADATA = {"total_num_frames": NUM_FRAMES, "fps": 2.0, "frames_indices": list(range(NUM_FRAMES))}


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request):
    model, processor = build_tiny_model(request.param)
    return request.param, model, processor


def random_video(height=64, width=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(
        0, 256, (NUM_FRAMES, 3, height, width), dtype=torch.uint8, generator=generator
    )


def video_inputs(processor, video=None):
    prompt = processor.apply_chat_template(
        VIDEO_MESSAGES, tokenize=False, add_generation_prompt=True
    )
    video = random_video() if video is None else video
    return processor(text=[prompt], videos=[video], video_metadata=[METADATA], return_tensors="pt")


def test_processor_and_model_are_the_real_classes(tiny):
    family, model, processor = tiny
    names = (
        type(processor).__name__,
        type(processor.image_processor).__name__,
        type(processor.video_processor).__name__,
    )
    assert names == REAL_PROCESSORS[family]
    assert type(processor).__name__ in {
        "Qwen2VLProcessor",
        "Qwen2_5_VLProcessor",
        "Qwen3VLProcessor",
    }
    assert type(processor.tokenizer).__name__ == "Qwen2Tokenizer"
    assert type(model).__name__ == REAL_MODELS[family]
    assert not model.training and model.dtype == torch.float32
    expected_patch = 16 if family == "qwen3_vl" else 14
    for sub in (processor.image_processor, processor.video_processor):
        assert (sub.patch_size, sub.temporal_patch_size, sub.merge_size) == (expected_patch, 2, 2)


def test_tokenizer_round_trips_text_and_keeps_special_tokens_whole(tiny):
    _, model, processor = tiny
    tokenizer = processor.tokenizer
    text = "First the red ball moves left, then 3 blue squares appear. Ünïcode 日本 ok?\n"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text

    for token in SPECIAL_TOKENS + ANSWER_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert ids == [tokenizer.convert_tokens_to_ids(token)], token
        assert ids[0] < model.config.text_config.vocab_size
    assert set(SPECIAL_TOKENS) <= set(tokenizer.all_special_tokens)
    assert not set(ANSWER_TOKENS) & set(tokenizer.all_special_tokens)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"

    reply = "<think>it moves left</think><answer>A</answer><|im_end|>"
    ids = tokenizer.encode(reply, add_special_tokens=False)
    assert (
        tokenizer.decode(ids, skip_special_tokens=True)
        == "<think>it moves left</think><answer>A</answer>"
    )


def test_tokenizer_training_is_deterministic_and_accepts_a_corpus():
    first, second = build_tokenizer(), build_tokenizer()
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()

    small = build_tokenizer(corpus=["a tiny corpus about a cat", "the cat sat"] * 5, vocab_size=300)
    assert len(small) == len(small.get_vocab()) <= 300 + len(SPECIAL_TOKENS) + len(ANSWER_TOKENS)
    assert small.encode("<|video_pad|>", add_special_tokens=False) == [
        small.convert_tokens_to_ids("<|video_pad|>")
    ]


def test_chat_template_renders_one_video_placeholder(tiny):
    _, _, processor = tiny
    prompt = processor.apply_chat_template(
        VIDEO_MESSAGES, tokenize=False, add_generation_prompt=True
    )
    assert prompt == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What moves first?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert prompt.count("<|video_pad|>") == 1
    assert processor.tokenizer.apply_chat_template(
        VIDEO_MESSAGES, tokenize=False
    ) == prompt.removesuffix("<|im_start|>assistant\n")

    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]},
        {"role": "assistant", "content": "Red."},
    ]
    assert processor.apply_chat_template(conversation, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Colour?<|im_end|>\n"
        "<|im_start|>assistant\nRed.<|im_end|>\n"
    )


@pytest.mark.parametrize("size", [(64, 64), (112, 112)])
def test_processor_expands_the_video_to_its_grid(tiny, size):
    family, model, processor = tiny
    inputs = video_inputs(processor, random_video(*size))
    grid = inputs["video_grid_thw"]
    assert grid.shape == (1, 3)
    assert grid[0, 0].item() == NUM_FRAMES // 2, (
        "every frame passed in must be kept (no resampling)"
    )
    merge = processor.video_processor.merge_size
    n_video_tokens = (inputs["input_ids"] == model.config.video_token_id).sum().item()
    assert n_video_tokens == grid.prod().item() // merge**2
    assert 10 <= n_video_tokens <= 300
    patch = processor.video_processor.patch_size
    assert inputs["pixel_values_videos"].shape == (grid.prod().item(), 3 * 2 * patch * patch)
    if family == "qwen2_5_vl":
        # 2 frames per temporal patch at 2 fps
        assert inputs["second_per_grid_ts"].tolist() == [1.0]


def test_processor_accepts_numpy_frames_last(tiny):
    _, _, processor = tiny
    video = random_video()
    from_tensor = video_inputs(processor, video)
    from_numpy = video_inputs(processor, np.ascontiguousarray(video.permute(0, 2, 3, 1).numpy()))
    assert torch.equal(from_tensor["input_ids"], from_numpy["input_ids"])
    assert torch.equal(from_tensor["video_grid_thw"], from_numpy["video_grid_thw"])
    torch.testing.assert_close(
        from_tensor["pixel_values_videos"], from_numpy["pixel_values_videos"]
    )


def test_forward_gives_finite_logits_over_the_vocabulary(tiny):
    _, model, processor = tiny
    inputs = video_inputs(processor)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], len(processor.tokenizer))
    assert logits.shape[-1] == model.config.text_config.vocab_size
    assert torch.isfinite(logits).all()


def test_generate_produces_new_tokens(tiny):
    _, model, processor = tiny
    inputs = video_inputs(processor)
    prompt_len = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape == (1, prompt_len + 4)
    assert torch.equal(out[:, :prompt_len], inputs["input_ids"])
    assert isinstance(processor.batch_decode(out[:, prompt_len:])[0], str)


def test_save_and_load_round_trip(tiny, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    family, model, processor = tiny
    out_dir = save_tiny_model(family, tmp_path / family)
    assert (out_dir / "model.safetensors").is_file()

    loaded_model = AutoModelForImageTextToText.from_pretrained(out_dir).eval()
    loaded_processor = AutoProcessor.from_pretrained(out_dir)
    assert type(loaded_model) is type(model)
    assert type(loaded_processor) is type(processor)
    assert type(loaded_processor.video_processor) is type(processor.video_processor)
    assert loaded_processor.video_processor.do_sample_frames is False
    assert loaded_model.generation_config.eos_token_id == processor.tokenizer.eos_token_id

    inputs = video_inputs(processor)
    loaded_inputs = video_inputs(loaded_processor)
    assert inputs.keys() == loaded_inputs.keys()
    for key in inputs:
        assert torch.equal(torch.as_tensor(inputs[key]), torch.as_tensor(loaded_inputs[key])), key
    with torch.no_grad():
        expected = model(**inputs).logits
        actual = loaded_model(**loaded_inputs).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_seed_controls_the_weights():
    first, _ = build_tiny_model("qwen2_vl", seed=0)
    again, _ = build_tiny_model("qwen2_vl", seed=0)
    other, _ = build_tiny_model("qwen2_vl", seed=1)
    pairs = list(zip(first.parameters(), again.parameters(), other.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b, _ in pairs)
    assert not all(torch.equal(a, c) for a, _, c in pairs)


@pytest.mark.parametrize("family", FAMILIES)
def test_config_is_consistent_with_the_tokenizer_and_scales(family):
    tokenizer = build_tokenizer()
    config = build_config(
        family,
        tokenizer,
        hidden_size=128,
        num_layers=4,
        num_heads=8,
        vision_hidden_size=96,
        vision_depth=4,
    )
    text, vision = config.text_config, config.vision_config
    assert text.vocab_size == len(tokenizer)
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (128, 4, 8)
    assert sum(text.rope_parameters["mrope_section"]) == 128 // 8 // 2
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.vision_end_token_id == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert (
        text.eos_token_id == tokenizer.eos_token_id and text.pad_token_id == tokenizer.pad_token_id
    )
    assert vision.depth == 4
    if family == "qwen2_vl":
        assert (vision.embed_dim, vision.hidden_size) == (96, 128)
    else:
        assert (vision.hidden_size, vision.out_hidden_size) == (96, 128)
    if family == "qwen2_5_vl":
        assert vision.fullatt_block_indexes and max(vision.fullatt_block_indexes) == 3
    if family == "qwen3_vl":
        assert text.head_dim == 16 and text.rope_parameters["mrope_interleaved"]
        assert 0 < len(vision.deepstack_visual_indexes) <= 4
        assert all(0 <= i < 4 for i in vision.deepstack_visual_indexes)


def test_unknown_family_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="qwen2_vl, qwen2_5_vl, qwen3_vl"):
        build_processor("llava")
    with pytest.raises(ValueError, match="qwen2_vl"):
        build_tiny_model("qwen4_vl")
