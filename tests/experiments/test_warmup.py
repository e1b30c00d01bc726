"""Supervised warm-up: the policy learns to write a row's reasoning trace."""

import json
import warnings

import pytest
import torch

from tests.data.media import write_video
from videoktr.data.dataset import VideoR1Dataset
from videoktr.data.prompts import build_prompt_inputs
from videoktr.experiments.warmup import sft_target, supervised_warmup
from videoktr.models.generation import generate_completions
from videoktr.models.tiny import build_tiny_model

TRACE = "<think>I see a red square first, then a blue circle.</think><answer>A</answer>"


@pytest.fixture
def trace_dataset(tmp_path):
    write_video(tmp_path / "clip.mp4", num_frames=8, fps=4, width=64, height=64)
    rows = [
        {"problem": "Which shape came first?", "problem_type": "multiple choice", "options": ["A. square", "B. circle"],
         "solution": "<answer>A</answer>", "path": "./clip.mp4", "data_type": "video", "trace": TRACE},
        {"problem": "Missing video", "problem_type": "multiple choice", "options": ["A. x", "B. y"],
         "solution": "<answer>B</answer>", "path": "./missing.mp4", "data_type": "video"},
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VideoR1Dataset(path, min_frames=4, max_frames=8)


def test_target_prefers_trace_then_process_and_solution(trace_dataset):
    sample = trace_dataset[0]
    assert sft_target(sample) == TRACE
    sample.row.pop("trace")
    sample.row["process"] = "It is a square."
    assert sft_target(sample) == "<think>It is a square.</think><answer>A</answer>"
    sample.row.pop("process")
    assert sft_target(sample) == "<answer>A</answer>"


def test_warmup_fits_a_trace_and_the_policy_then_writes_it(trace_dataset):
    torch.manual_seed(0)
    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = supervised_warmup(model, processor, trace_dataset, steps=80, learning_rate=3e-3,
                                   prompts_per_step=1, progress=False)
    assert result.skipped == 1  # the missing video, counted once
    assert result.losses[-1] < 0.2 * result.losses[0]
    decoded = trace_dataset.decode(0)
    inputs = build_prompt_inputs(processor, decoded.sample, decoded.media)
    ids, mask = generate_completions(model, processor, inputs, num_generations=1, max_completion_length=40,
                                     temperature=0.01)
    text = processor.tokenizer.decode(ids[0][mask[0]].tolist(), skip_special_tokens=True)
    assert text.strip() == TRACE


def test_warmup_rejects_bad_arguments(trace_dataset):
    model, processor = build_tiny_model("qwen2_5_vl")
    with pytest.raises(ValueError, match="steps and prompts_per_step must be positive"):
        supervised_warmup(model, processor, trace_dataset, steps=0)


def test_warmup_can_freeze_the_vision_encoder(trace_dataset):
    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        supervised_warmup(model, processor, trace_dataset, steps=3, learning_rate=3e-3, prompts_per_step=1,
                          progress=False, freeze_vision_encoder=True)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and not any(".visual." in f".{name}" for name in changed)
    assert all(p.requires_grad for p in model.parameters())
    supervised_warmup(model, processor, trace_dataset, steps=1, learning_rate=3e-3, prompts_per_step=1,
                      progress=False)  # not frozen: the encoder moves too
    assert any(not torch.equal(p, before[name]) for name, p in model.named_parameters() if ".visual." in f".{name}")


def test_token_weights_make_the_loss_a_weighted_mean(trace_dataset):
    from videoktr.models import get_adapter

    model, processor = build_tiny_model("qwen2_5_vl", seed=0)
    decoded = trace_dataset.decode(0)
    target = processor.tokenizer.encode(TRACE, add_special_tokens=False)
    with torch.no_grad():
        logps = get_adapter(model).policy_logps(
            model, get_adapter(model).prepare(build_prompt_inputs(processor, decoded.sample, decoded.media)),
            torch.tensor([target + [0]]), chunk_size=None)
    # all the weight on the third token: the first step's loss is that token's NLL alone
    only_third = lambda sample, ids: [1.0 if i == 2 else 0.0 for i in range(len(ids))]  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = supervised_warmup(model, processor, trace_dataset, steps=1, learning_rate=1e-3, prompts_per_step=1,
                                   progress=False, token_weights=only_third)
    assert result.losses[0] == pytest.approx(-float(logps[0, 2]), rel=1e-4)
    with pytest.raises(ValueError, match="token_weights gave 1 weights"):
        supervised_warmup(model, processor, trace_dataset, steps=1, progress=False,
                          token_weights=lambda sample, ids: [1.0])


def test_confused_teacher_swaps_the_answer_word_and_letter_in_a_fixed_share_of_rows():
    from types import SimpleNamespace

    from videoktr.experiments.warmup import confused_teacher

    options = ["A. red", "B. green", "C. blue", "D. yellow"]

    def sample(index: int, colour: str, letter: str):
        row = {"id": f"row-{index}", "options": options,
               "trace": f"<think>Maybe red blue. The circle is {colour}.</think><answer>{letter}</answer>"}
        return SimpleNamespace(row=row, solution=f"<answer>{letter}</answer>")

    teacher = confused_teacher({"yellow": "green"}, 0.5)
    targets = [teacher(sample(i, "yellow", "D")) for i in range(400)]
    wrong = [t for t in targets if "green" in t]
    assert set(wrong) == {"<think>Maybe red blue. The circle is green.</think><answer>B</answer>"}
    assert 160 <= len(wrong) <= 240  # about half the rows
    assert targets == [teacher(sample(i, "yellow", "D")) for i in range(400)]  # the same rows every pass
    # other answers, rate 0 and a word no option names are left as they are
    assert teacher(sample(0, "red", "A")).endswith("is red.</think><answer>A</answer>")
    assert all("green" not in confused_teacher({"yellow": "green"}, 0.0)(sample(i, "yellow", "D")) for i in range(50))
    assert all("D</answer>" in confused_teacher({"yellow": "purple"}, 1.0)(sample(i, "yellow", "D")) for i in range(5))
    assert all("green" in confused_teacher({"yellow": "green"}, 1.0)(sample(i, "yellow", "D")) for i in range(5))
    with pytest.raises(ValueError, match="rate"):
        confused_teacher({}, 1.5)
