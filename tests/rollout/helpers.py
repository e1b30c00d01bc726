"""Prompts for the rollout tests: a tiny model and two video prompts and an image prompt of
different lengths."""

from __future__ import annotations

import torch

from tests.data.test_prompts import make_sample
from videoktr.data import DecodedVideo, build_prompt_inputs
from videoktr.rollout import RolloutRequest


def random_clip(frames: int, seed: int, size: int = 56) -> DecodedVideo:
    gen = torch.Generator().manual_seed(seed)
    return DecodedVideo(
        frames=torch.randint(0, 256, (frames, 3, size, size), generator=gen, dtype=torch.uint8),
        fps=2.0, source_fps=8.0, total_frames=frames * 4, frame_indices=[4 * i for i in range(frames)],
        duration=frames / 2.0,
    )


def requests_for(processor, seed: int = 0) -> list[RolloutRequest]:
    """A 4-frame video, an 8-frame video with another question type and an image."""
    media = [random_clip(4, 1), random_clip(8, 2), torch.randint(0, 256, (3, 64, 48), dtype=torch.uint8)]
    samples = [make_sample(), make_sample("numerical"), make_sample(data_type="image")]
    return [RolloutRequest(sample, item, build_prompt_inputs(processor, sample, item), seed + index)
            for index, (sample, item) in enumerate(zip(samples, media))]
