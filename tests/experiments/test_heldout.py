"""The noise-free held-out metric: teacher-forced log-probabilities of the correct answer."""

import json
import warnings

import pytest

from tests.data.media import write_video
from videoktr.data.dataset import VideoR1Dataset
from videoktr.experiments.heldout import heldout_logprobs
from videoktr.experiments.warmup import supervised_warmup
from videoktr.models.tiny import build_tiny_model

PROCESS = "<think>I see a red square first, then a blue circle.</think>"


@pytest.fixture
def dataset(tmp_path):
    write_video(tmp_path / "clip.mp4", num_frames=8, fps=4, width=64, height=64)
    row = {"problem": "Which shape came first?", "problem_type": "multiple choice", "options": ["A. square", "B. circle"],
           "solution": "<answer>A</answer>", "path": "./clip.mp4", "data_type": "video", "process": PROCESS}
    rows = [row, {**row, "process": ""}, {**row, "path": "./missing.mp4"}]
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VideoR1Dataset(path, min_frames=4, max_frames=8)


def test_heldout_logprobs_rise_when_the_policy_learns_the_answer(dataset):
    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = heldout_logprobs(model, processor, dataset)
        assert model.training  # scored in eval mode, the caller's mode restored
        assert before["rows"] == 1  # the row without reasoning and the unreadable one are left out
        assert before["answer"] < 0 and before["trace"] < 0
        # the answer block has several tokens: its log-probability is a sum, the trace's a mean
        assert before["answer"] < before["trace"]
        # key adds the reasoning's last word ("circle.</think>") to the answer block's sum
        assert before["key"] < before["answer"]
        supervised_warmup(model, processor, dataset, steps=30, learning_rate=3e-3, prompts_per_step=1, progress=False)
        after = heldout_logprobs(model, processor, dataset)
    assert after["answer"] > before["answer"] + 1.0 and after["trace"] > before["trace"] + 1.0
    assert after["key"] > before["key"] + 1.0


def test_the_key_tokens_are_those_of_the_last_word():
    from videoktr.experiments.heldout import _tokens_and_last_word

    _, processor = build_tiny_model("qwen2_5_vl", seed=0)
    tokenizer = processor.tokenizer
    ids, first = _tokens_and_last_word(tokenizer, PROCESS)
    assert ids == tokenizer.encode(PROCESS, add_special_tokens=False)
    assert tokenizer.decode(ids[first:]).strip() == "circle.</think>"
    assert tokenizer.decode(ids[:first]).strip() == "<think>I see a red square first, then a blue"
    assert _tokens_and_last_word(tokenizer, "word")[1] == 0


def test_no_scorable_row_is_an_error(dataset, tmp_path):
    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    path = tmp_path / "none.jsonl"
    path.write_text(json.dumps({"problem": "q", "problem_type": "multiple choice", "options": ["A. x", "B. y"],
                                "solution": "<answer>A</answer>", "path": "./clip.mp4", "data_type": "video"}))
    with pytest.raises(ValueError, match="no readable row with a 'process'"):
        heldout_logprobs(model, processor, VideoR1Dataset(path, min_frames=4, max_frames=8))


def test_the_curve_is_measured_every_n_steps_and_at_the_last(dataset):
    from types import SimpleNamespace

    from videoktr.experiments.heldout import HeldoutCurve

    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    curve = HeldoutCurve(model, processor, dataset, every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(1, 6):
            curve.on_step_end(None, SimpleNamespace(global_step=step, max_steps=5), None)
    assert [point["step"] for point in curve.curve] == [2, 4, 5]
    assert curve.curve[0]["answer"] == curve.curve[-1]["answer"]  # the model did not change
    assert set(curve.curve[0]) == {"step", "answer", "key", "trace"}
    with pytest.raises(ValueError, match="every"):
        HeldoutCurve(model, processor, dataset, every=0)
