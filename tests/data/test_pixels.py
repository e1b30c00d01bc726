"""The official pixel budget through our pipeline, with qwen-vl-utils' ``smart_resize`` (the
package the official Video-KTR code resizes with) as the oracle: a 640x360 clip gets the official
frame size and video-token count in training (the recipes) and in evaluation (the defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest
from qwen_vl_utils import smart_resize

from videoktr import defaults
from videoktr.data import PixelBudget, Sample, build_prompt_inputs, decode_uniform
from videoktr.data.pixels import video_size_kwargs
from videoktr.eval.generation import EvalSettings
from videoktr.models.tiny import FAMILIES
from videoktr.train import load_config

from .media import write_video

REPO = Path(__file__).resolve().parents[2]
FRAME = defaults.VIDEO_FRAME_PIXELS


def official_frame(height: int, width: int, factor: int) -> tuple[int, int]:
    """qwen-vl-utils' ``fetch_video`` with VIDEO_MIN_PIXELS = VIDEO_MAX_PIXELS = 128 x 28 x 28:
    the frame maximum becomes ``max(min(VIDEO_MAX_PIXELS, total / n * 2), int(min * 1.05))``."""
    return smart_resize(height, width, factor=factor, min_pixels=FRAME, max_pixels=max(FRAME, int(FRAME * 1.05)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pixels")
    return {
        (360, 640): decode_uniform(write_video(folder / "wide.mp4", 32, fps=8, width=640, height=360), 16),
        (90, 160): decode_uniform(write_video(folder / "small.mp4", 32, fps=8, width=160, height=90), 16),
        (480, 480): decode_uniform(write_video(folder / "square.mp4", 32, fps=8, width=480, height=480), 16),
    }


def sample() -> Sample:
    return Sample(row={}, path=Path("clip.mp4"), data_type="video", problem="What happens?",
                  problem_type="free-form", options=[], solution="<answer>x</answer>", row_id=0, location="row 0")


def frame_and_tokens(processor, inputs) -> tuple[tuple[int, int], int]:
    grid = inputs["video_grid_thw"][0]
    patch = processor.video_processor.patch_size
    pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    return (int(grid[1]) * patch, int(grid[2]) * patch), int((inputs["input_ids"] == pad).sum())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", [(360, 640), (90, 160), (480, 480)])
def test_the_official_budget_gives_the_official_frame_size_and_token_count(processors, clips, family, size):
    processor = processors[family]
    factor = processor.video_processor.patch_size * processor.video_processor.merge_size
    expected_frame = official_frame(*size, factor=factor)
    expected_tokens = 16 // 2 * (expected_frame[0] // factor) * (expected_frame[1] // factor)
    recipe = load_config(["--output_dir", "unused", "--bf16", "false"],
                         config_file=REPO / "recipes" / "video_ktr_qwen2_5_vl_7b.yaml")
    for budget in (recipe.pixel_budget, EvalSettings().pixel_budget):  # training, evaluation by default
        frame, tokens = frame_and_tokens(processor, build_prompt_inputs(processor, sample(), clips[size], budget))
        assert frame == expected_frame and tokens == expected_tokens, (family, size, budget)


def test_a_640x360_clip_costs_half_the_tokens_of_the_old_recipes(processors, clips):
    processor = processors["qwen2_5_vl"]
    official = frame_and_tokens(processor, build_prompt_inputs(processor, sample(), clips[(360, 640)],
                                                                  PixelBudget(video_min_pixels=FRAME,
                                                                              video_max_pixels=FRAME)))
    old_recipe = frame_and_tokens(processor, build_prompt_inputs(processor, sample(), clips[(360, 640)], 3211264))
    assert official == ((224, 420), 960)  # 128 x 28 x 28 pixels a frame, as the issue computed
    assert old_recipe[1] > 1.8 * official[1]


def test_the_per_frame_floor_wins_over_a_total_cap(processors):
    video_processor = processors["qwen2_5_vl"].video_processor
    kwargs = video_size_kwargs(video_processor, 16, PixelBudget(max_pixels=16 * 20_000, video_min_pixels=FRAME))
    assert kwargs["size"]["shortest_edge"] == FRAME and kwargs["cap_pixels_per_frame"] is True
    assert video_size_kwargs(video_processor, 16, PixelBudget()) == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"video_min_pixels": 0}, "video_min_pixels must be a positive int"),
     ({"video_min_pixels": 200, "video_max_pixels": 100}, "video_min_pixels=200 is larger than video_max_pixels=100"),
     ({"max_pixels": True}, "max_pixels must be a positive int")],
)
def test_bad_budgets_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PixelBudget(**kwargs)


@pytest.mark.parametrize(("frames", "width", "height"), [(1, 64, 48), (2, 2000, 2000)])
def test_a_one_frame_and_a_2000x2000_video_get_the_official_frames(processors, tmp_path, frames, width, height):
    from videoktr.data import decode_video

    path = write_video(tmp_path / "clip.mp4", frames, fps=4, width=width, height=height)
    video = decode_video(path, fps=2.0, min_frames=4, max_frames=16)
    assert video.num_frames == frames
    processor = processors["qwen2_5_vl"]
    frame, tokens = frame_and_tokens(processor, build_prompt_inputs(processor, sample(), video,
                                                                    EvalSettings().pixel_budget))
    assert frame == official_frame(height, width, factor=28)
    assert tokens == (frame[0] // 28) * (frame[1] // 28)  # one temporal patch (a one-frame clip is doubled)
