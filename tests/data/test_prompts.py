"""The think/answer prompt, and processor inputs with the real tiny Qwen processors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from videoktr.data import (
    ANSWER_FORMAT_INSTRUCTIONS,
    PROBLEM_TYPES,
    DecodedVideo,
    Sample,
    build_messages,
    build_prompt_inputs,
    build_prompt_text,
    decode_video,
    format_options,
    pixel_budget_size,
)
from videoktr.models.tiny import FAMILIES

from .media import write_video


def make_sample(
    problem_type="multiple choice", options=("A. red", "B. blue", "C. green"), data_type="video"
) -> Sample:
    return Sample(
        row={},
        path=Path("/nowhere/clip.mp4"),
        data_type=data_type,
        problem="Which colour is the ball at the end?",
        problem_type=problem_type,
        options=list(options) if problem_type == "multiple choice" else [],
        solution="<answer>B</answer>",
        row_id=3,
        location="train.jsonl line 3",
    )


# ----------------------------------------------------------------------------- prompt text


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
@pytest.mark.parametrize("data_type", ["video", "image"])
def test_prompt_holds_question_instruction_and_tags(problem_type, data_type):
    text = build_prompt_text(make_sample(problem_type, data_type=data_type))
    assert text.startswith("Which colour is the ball at the end?\n")
    assert ANSWER_FORMAT_INSTRUCTIONS[problem_type] in text
    assert "<think> </think>" in text and "<answer> </answer>" in text
    assert f"the {data_type}" in text
    if problem_type == "multiple choice":
        assert "\nOptions:\nA. red\nB. blue\nC. green\n" in text
    else:
        assert "Options:" not in text


def test_answer_instructions_differ_per_type():
    assert len(set(ANSWER_FORMAT_INSTRUCTIONS.values())) == len(PROBLEM_TYPES)
    assert "letter" in ANSWER_FORMAT_INSTRUCTIONS["multiple choice"]
    assert "number" in ANSWER_FORMAT_INSTRUCTIONS["numerical"]
    assert "number" in ANSWER_FORMAT_INSTRUCTIONS["regression"]
    assert "text exactly" in ANSWER_FORMAT_INSTRUCTIONS["OCR"]


def test_wording_is_not_video_r1s():
    text = " ".join(build_prompt_text(make_sample(t)) for t in PROBLEM_TYPES)
    for phrase in (
        "pondering deeply",
        "internal dialogue",
        "Please provide only the single option letter",
        "Please provide the numerical value",
        "Please transcribe text",
    ):
        assert phrase not in text


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["A. red", "B. blue"], ["A. red", "B. blue"]),
        (["A) red", " B: blue "], ["A) red", "B: blue"]),
        (["red", "blue"], ["A. red", "B. blue"]),
        (["B. red", "A. blue"], ["A. B. red", "B. A. blue"]),  # labels out of order: relabel
        (["Apple pie", "Banana"], ["A. Apple pie", "B. Banana"]),
    ],
)
def test_format_options(options, expected):
    assert format_options(options) == expected


@pytest.mark.parametrize("data_type", ["video", "image"])
def test_build_messages(data_type):
    sample = make_sample(data_type=data_type)
    messages = build_messages(sample)
    assert messages == [
        {
            "role": "user",
            "content": [{"type": data_type}, {"type": "text", "text": build_prompt_text(sample)}],
        }
    ]


# ----------------------------------------------------------------------------- processor inputs


@pytest.fixture(scope="module")
def real_video(real_clip) -> DecodedVideo:
    return decode_video(real_clip.path, fps=2.0, min_frames=4, max_frames=4)


@pytest.fixture(scope="module")
def two_fps_video(tmp_path_factory) -> DecodedVideo:
    """4 s at 24 fps sampled at exactly 2 fps: 8 frames, indices 6, 18, ..., 90."""
    path = write_video(tmp_path_factory.mktemp("two_fps") / "four_seconds.mp4", 96, fps=24)
    return decode_video(path, fps=2.0)


def _count(processor, inputs, token: str) -> int:
    return int((inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids(token)).sum())


def _frame_pixels(processor_part, grid: torch.Tensor) -> int:
    """Pixels of one resized frame (or image) of a ``[t, h, w]`` patch grid."""
    return int(grid[1]) * int(grid[2]) * processor_part.patch_size**2


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("which", ["real", "two_fps"])
def test_video_inputs_have_the_grid_and_token_count(
    processors, real_video, two_fps_video, family, which
):
    processor = processors[family]
    video = real_video if which == "real" else two_fps_video
    inputs = build_prompt_inputs(processor, make_sample(), video)
    grid = inputs["video_grid_thw"]
    assert grid.shape == (1, 3)
    assert int(grid[0, 0]) == video.num_frames // 2
    merge = processor.video_processor.merge_size
    assert _count(processor, inputs, "<|video_pad|>") == int(grid[0].prod()) // merge**2
    assert inputs["pixel_values_videos"].shape[0] == int(grid[0].prod())
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    assert "Which colour is the ball at the end?" in text and "C. green" in text


def test_qwen2_5_vl_second_per_grid_ts_is_one_second_at_two_fps(processors, two_fps_video):
    assert two_fps_video.fps == 2.0
    inputs = build_prompt_inputs(processors["qwen2_5_vl"], make_sample(), two_fps_video)
    assert inputs["second_per_grid_ts"].tolist() == [1.0]


def test_qwen2_5_vl_second_per_grid_ts_follows_the_effective_rate(processors, real_video):
    inputs = build_prompt_inputs(processors["qwen2_5_vl"], make_sample(), real_video)
    assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2 / real_video.fps], rel=1e-5)


def test_qwen3_vl_timestamps_are_the_frames_times(processors, two_fps_video):
    processor = processors["qwen3_vl"]
    inputs = build_prompt_inputs(processor, make_sample(), two_fps_video)
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    # frames at 0.25, 0.75, ..., 3.75 s; each temporal patch is stamped with its pair's mean time
    assert re.findall(r"<([\d.]+) seconds>", text) == ["0.5", "1.5", "2.5", "3.5"]


@pytest.mark.parametrize("family", FAMILIES)
def test_max_pixels_bounds_the_whole_clip(processors, real_video, family):
    processor = processors[family]
    budget = 40_000
    full = build_prompt_inputs(processor, make_sample(), real_video)
    capped = build_prompt_inputs(processor, make_sample(), real_video, pixels=budget)
    grid = capped["video_grid_thw"][0]
    encoded_frames = int(grid[0]) * processor.video_processor.temporal_patch_size
    assert encoded_frames * _frame_pixels(processor.video_processor, grid) <= budget
    assert int(grid[0]) == real_video.num_frames // 2
    assert int(grid.prod()) < int(full["video_grid_thw"][0].prod())
    merge = processor.video_processor.merge_size
    assert _count(processor, capped, "<|video_pad|>") == int(grid.prod()) // merge**2


def test_pixel_budget_size_per_family(processors):
    per_frame = pixel_budget_size(processors["qwen2_5_vl"].video_processor, 80_000, 4)
    assert per_frame["longest_edge"] == 20_000
    odd = pixel_budget_size(processors["qwen2_vl"].video_processor, 80_000, 3)
    assert odd["longest_edge"] == 20_000  # 3 frames are encoded as 4
    whole = pixel_budget_size(processors["qwen3_vl"].video_processor, 80_000, 4)
    assert whole["longest_edge"] == 80_000
    image = pixel_budget_size(processors["qwen3_vl"].image_processor, 80_000, None)
    assert image["longest_edge"] == 80_000
    for size in (per_frame, odd, whole, image):
        assert size["shortest_edge"] <= size["longest_edge"]
    with pytest.raises(ValueError, match="max_pixels"):
        pixel_budget_size(processors["qwen3_vl"].video_processor, 0, 4)


@pytest.mark.parametrize("family", FAMILIES)
def test_single_frame_clip_is_accepted(processors, real_video, family):
    one = DecodedVideo(
        frames=real_video.frames[:1],
        fps=1 / real_video.duration,
        source_fps=real_video.source_fps,
        total_frames=real_video.total_frames,
        frame_indices=real_video.frame_indices[:1],
        duration=real_video.duration,
    )
    inputs = build_prompt_inputs(processors[family], make_sample(), one)
    assert int(inputs["video_grid_thw"][0, 0]) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_image_inputs(processors, family):
    processor = processors[family]
    image = torch.randint(0, 256, (3, 120, 160), dtype=torch.uint8)
    sample = make_sample("numerical", data_type="image")
    inputs = build_prompt_inputs(processor, sample, image, pixels=30_000)
    grid = inputs["image_grid_thw"][0]
    assert int(grid[0]) == 1
    assert _frame_pixels(processor.image_processor, grid) <= 30_000
    merge = processor.image_processor.merge_size
    assert _count(processor, inputs, "<|image_pad|>") == int(grid.prod()) // merge**2
    assert _count(processor, inputs, "<|video_pad|>") == 0


def test_media_type_must_match(processors, real_video):
    with pytest.raises(TypeError, match="DecodedVideo"):
        build_prompt_inputs(processors["qwen2_vl"], make_sample(), real_video.frames)
    with pytest.raises(TypeError, match=r"\[C, H, W\]"):
        build_prompt_inputs(processors["qwen2_vl"], make_sample(data_type="image"), real_video)
