"""Fixtures for the evaluation tests: a tiny model, a small synthetic Video-R1 benchmark on disk
(with one missing video), and the real Video-Holmes example question files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.media import write_video
from videoktr.models.tiny import build_tiny_model

# /work/main/tests/eval/conftest.py -> /work/main -> /work/shared/data/video_holmes_examples
# Real Video-Holmes question files, vendored (Apache-2.0) so these tests never depend on a path
# outside the repository.
HOLMES_EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "video_holmes_examples"

NUM_GOOD = 4


@pytest.fixture(scope="session")
def tiny_model():
    return build_tiny_model("qwen2_5_vl")


def synthetic_rows() -> list[dict]:
    rows = []
    for i in range(NUM_GOOD):
        rows.append(
            {
                "id": f"q{i}",
                "kind": "count" if i % 2 == 0 else "order",
                "problem": f"Which shape appears first in clip {i}?",
                "problem_type": "multiple choice",
                "options": ["A. circle", "B. square"],
                "solution": "<answer>A</answer>" if i < 2 else "<answer>B</answer>",
                "path": f"./videos/clip{i}.mp4",
                "data_type": "video",
            }
        )
    rows.append(
        {
            "id": "q_missing",
            "kind": "count",
            "problem": "How many circles?",
            "problem_type": "multiple choice",
            "options": ["A. one", "B. two"],
            "solution": "<answer>B</answer>",
            "path": "./videos/missing.mp4",
            "data_type": "video",
        }
    )
    return rows


@pytest.fixture
def synthetic_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    (root / "videos").mkdir()
    for i in range(NUM_GOOD):
        write_video(
            root / "videos" / f"clip{i}.mp4", num_frames=10 + 2 * i, fps=8, width=64, height=64
        )
    (root / "test.jsonl").write_text("\n".join(json.dumps(r) for r in synthetic_rows()) + "\n")
    return root


@pytest.fixture
def holmes_examples() -> Path:
    return HOLMES_EXAMPLES


@pytest.fixture(autouse=True)
def fresh_fixture_judges():
    """The fake judges' call log and outage switch, reset around every test."""
    from tests.eval import fixture_judges

    fixture_judges.CALLS.clear()
    fixture_judges.OUTAGE = False
    yield
    fixture_judges.CALLS.clear()
    fixture_judges.OUTAGE = False
