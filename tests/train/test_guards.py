"""Bad input during training: a huge reward, a non-finite loss, an over-long prompt, malformed
rows; none may stop the run or reach the weights, and every one is counted."""

import json
import warnings

import pytest
import torch

from tests.data.media import write_video
from videoktr.data.dataset import MAX_QUESTION_CHARS, VideoR1Dataset
from videoktr.models import load_local_model
from videoktr.train import load_config
from videoktr.train.trainer import VideoGRPOTrainer

from .conftest import train_args


def build(tiny_model_dir, dataset, out, *extra):
    config = load_config(train_args(tiny_model_dir, dataset, out, "--save_strategy", "no", *extra))
    model, processor = load_local_model(tiny_model_dir)
    data = VideoR1Dataset(dataset, fps=config.fps, min_frames=config.min_frames, max_frames=config.max_frames)
    return VideoGRPOTrainer(model=model, args=config, train_dataset=data, processing_class=processor)


def train_quietly(trainer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()


def weights(trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])


def test_a_huge_reward_is_clipped_and_the_weights_stay_finite(tiny_model_dir, dataset_file, tmp_path):
    """A user reward of 1e39 (finite in float64, inf in float32) once made the weights NaN."""
    trainer = build(tiny_model_dir, dataset_file, tmp_path, "--reward_funcs", "tests.train.fixture_rewards:huge")
    initial = weights(trainer)
    with pytest.warns(RuntimeWarning, match="reward function 'tests.train.fixture_rewards:huge' gave .* beyond"):
        trainer.train()
    after = weights(trainer)
    assert torch.isfinite(after).all() and not torch.equal(after, initial)


@pytest.mark.parametrize("steps", [1, 2])
def test_a_step_with_a_non_finite_loss_is_skipped_and_counted(steps, tiny_model_dir, dataset_file, tmp_path,
                                                             monkeypatch):
    """Step 1's loss is NaN: its update is skipped (the weights after one step are the initial
    ones), counted, and step 2 trains as usual."""
    import videoktr.train.trainer as trainer_module

    original = trainer_module.grpo_loss
    calls = []

    def nan_on_the_first_step(*args, **kwargs):
        loss, metrics = original(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) <= 3 else loss), metrics  # step 1's three prompts

    monkeypatch.setattr(trainer_module, "grpo_loss", nan_on_the_first_step)
    trainer = build(tiny_model_dir, dataset_file, tmp_path, "--max_steps", str(steps))
    initial = weights(trainer)
    train_quietly(trainer)
    after = weights(trainer)
    assert trainer.update_guard.skipped == 1 and torch.isfinite(after).all()
    assert torch.equal(after, initial) == (steps == 1)
    if steps == 2:  # logged with step 2's metrics: one update skipped so far
        assert [e["skipped_updates"] for e in trainer.state.log_history if "skipped_updates" in e] == [0.0, 1.0]


def test_an_over_long_prompt_is_skipped_and_counted(tiny_model_dir, tmp_path):
    """It once raised and ended training."""
    rows = []
    for i in range(3):
        write_video(tmp_path / f"clip{i}.mp4", num_frames=8, fps=8, width=64, height=64)
        rows.append({"problem": "Which shape appears first?" + (" really" * 300 if i == 1 else ""),
                     "problem_type": "multiple choice", "options": ["A. circle", "B. square"],
                     "solution": "<answer>A</answer>", "path": f"./clip{i}.mp4", "data_type": "video"})
    rows.append({"problem": "broken", "problem_type": "telepathy", "solution": "x", "path": "./clip0.mp4",
                 "data_type": "video"})
    dataset = tmp_path / "train.jsonl"
    dataset.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    trainer = build(tiny_model_dir, dataset, tmp_path / "out", "--max_prompt_length", "300", "--max_steps", "1")
    with pytest.warns(UserWarning, match=r"line 2: the prompt has \d+ tokens .* more than max_prompt_length=300"):
        trainer.train()
    logged = [entry for entry in trainer.state.log_history if "skipped_samples" in entry][-1]
    assert logged["skipped_samples"] == 2  # the long prompt, and the malformed row read at load time


def test_a_question_of_a_megabyte_is_refused_when_the_dataset_is_read(tmp_path):
    write_video(tmp_path / "clip.mp4", num_frames=4, fps=4, width=32, height=32)
    row = {"problem": "x" * (MAX_QUESTION_CHARS + 1), "problem_type": "numerical", "solution": "<answer>1</answer>",
           "path": "./clip.mp4", "data_type": "video"}
    (tmp_path / "d.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.warns(UserWarning, match="line 1: field 'problem': .* characters, more than 20,000"):
        dataset = VideoR1Dataset(tmp_path / "d.jsonl")
    assert len(dataset) == 0 and dataset.num_skipped_rows == 1


def test_paths_outside_or_missing_under_the_default_data_root_say_how_to_set_it(tmp_path):
    """A dataset file kept in a subfolder of its videos' folder: the messages say that data_root
    defaults to the file's folder and how to set it."""
    (tmp_path / "videos" / "splits").mkdir(parents=True)
    write_video(tmp_path / "videos" / "clip.mp4", num_frames=4, fps=4, width=32, height=32)
    base = {"problem": "q", "problem_type": "numerical", "solution": "<answer>1</answer>", "data_type": "video"}
    rows = [{**base, "path": "../clip.mp4"}, {**base, "path": "clip.mp4"}]
    dataset_file = tmp_path / "videos" / "splits" / "train.jsonl"
    dataset_file.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    hint = r"\(relative paths resolve against data_root, which defaults to the dataset file's folder"
    with pytest.warns(UserWarning, match="line 1: field 'path': .* outside the data root .* " + hint):
        dataset = VideoR1Dataset(dataset_file)
    with pytest.warns(UserWarning, match="line 2: field 'path': unreadable video: .* no such file " + hint):
        assert dataset.decode(0) is None
    dataset = VideoR1Dataset(dataset_file, data_root=tmp_path / "videos")  # the folder the paths are relative to
    assert len(dataset) == 1 and dataset.decode(0) is not None
