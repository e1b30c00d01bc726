"""Shared fixtures for the data tests: the real clip (or a generated stand-in) and processors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from videoktr.models.tiny import FAMILIES, build_processor

from .media import write_video

# /work/main/tests/data/conftest.py -> /work/main -> /work/shared/data/...
REAL_CLIP = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real_clip_640x360_22s.mp4"
)


@dataclass(frozen=True)
class Clip:
    path: Path
    total_frames: int
    source_fps: float
    width: int
    height: int
    is_real: bool


@pytest.fixture(scope="session")
def real_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The real 22 s H.264 clip; when it is absent, a generated 22 s stand-in (220 flat frames at
    10 fps, 320x180), so the tests still decode a real MP4 instead of being skipped."""
    if REAL_CLIP.is_file():
        return Clip(REAL_CLIP, 491, 22.29, 640, 360, True)
    path = write_video(
        tmp_path_factory.mktemp("clip") / "stand_in_22s.mp4",
        220,
        fps=10,
        width=320,
        height=180,
        gop_size=30,
    )
    return Clip(path, 220, 10.0, 320, 180, False)


@pytest.fixture(scope="session")
def processors() -> dict:
    """The real processors of the three tiny model families, built once."""
    return {family: build_processor(family) for family in FAMILIES}
