"""A tiny model on disk and a small Video-R1 dataset with one missing and one corrupt video."""

import json

import pytest

from tests.data.media import write_random_bytes, write_video
from videoktr.models.tiny import save_tiny_model

NUM_GOOD_VIDEOS = 4


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return save_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("model") / "tiny", seed=0)


@pytest.fixture(scope="session")
def dataset_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rows = []
    for i in range(NUM_GOOD_VIDEOS):
        write_video(root / f"clip{i}.mp4", num_frames=16, fps=8, width=64, height=64)
        rows.append({
            "problem": f"Which shape appears first in clip {i}?", "problem_type": "multiple choice",
            "options": ["A. circle", "B. square"], "solution": "<answer>A</answer>",
            "path": f"./clip{i}.mp4", "data_type": "video",
        })
    write_random_bytes(root / "corrupt.mp4")
    rows.append({"problem": "How many?", "problem_type": "numerical", "solution": "<answer>3</answer>",
                 "path": "./missing.mp4", "data_type": "video"})
    rows.append({"problem": "How many?", "problem_type": "numerical", "solution": "<answer>3</answer>",
                 "path": "./corrupt.mp4", "data_type": "video"})
    path = root / "train.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def train_args(model_dir, dataset, output_dir, *extra):
    """Flags of a fast CPU run: 3 prompts x G = 3 completions of 12 tokens, 4-8 frames, 2 steps
    (which visit all 6 rows, the missing and the corrupt video included)."""
    return [
        "--model", str(model_dir), "--dataset", str(dataset), "--output_dir", str(output_dir),
        "--per_device_train_batch_size", "3", "--num_generations", "3", "--max_completion_length", "12", "--min_frames", "4", "--max_frames", "8",
        "--max_steps", "2", "--save_steps", "2", "--learning_rate", "1e-3", "--report_to", "none",
        "--reward_funcs", "accuracy", "format", "tests.train.fixture_rewards:letter_e_share",
        "--seed", "0", "--disable_tqdm", "true", *extra,
    ]
