"""The synthetic benchmark's parsers: the training reward, and Video-R1's evaluation rule
(``parser="video_r1"``) restated, its regression score in float32 as the official code computes it."""

import pytest
import torch

from videoktr.eval import score_output

# ----------------------------------------------------------------------------- synthetic

SYN_ROW = {
    "problem": "Which?",
    "problem_type": "multiple choice",
    "options": ["A. circle", "B. square"],
    "solution": "<answer>A</answer>",
    "path": "./v.mp4",
    "data_type": "video",
    "kind": "order",
}


@pytest.mark.parametrize(
    ("output", "official", "video_r1"),
    [
        ("<think>round</think><answer>A</answer>", 1.0, 1.0),
        ("<answer>(A)</answer>", 1.0, 0.0),  # Video-R1 compares strings exactly
        ("<answer>A. circle</answer>", 1.0, 0.0),
        ("<answer>A</answer> no, <answer>B</answer>", 0.0, 1.0),  # last block vs first block
        ("A", 0.0, 1.0),  # no block: Video-R1 compares the whole output
        ("<answer>B</answer>", 0.0, 0.0),
    ],
)
def test_synthetic_parsers(output, official, video_r1):
    assert score_output("synthetic", SYN_ROW, output) == official
    assert score_output("synthetic", SYN_ROW, output, parser="strict") == official
    assert score_output("synthetic", SYN_ROW, output, parser="video_r1") == video_r1


def test_synthetic_video_r1_numerical_and_regression():
    numerical = {**SYN_ROW, "problem_type": "numerical", "solution": "<answer>3.5</answer>"}
    assert score_output("synthetic", numerical, "<answer>3.50</answer>", parser="video_r1") == 1.0
    assert score_output("synthetic", numerical, "<answer>4</answer>", parser="video_r1") == 0.0
    regression = {**SYN_ROW, "problem_type": "regression", "solution": "<answer>10</answer>"}
    assert score_output("synthetic", regression, "<answer>10</answer>", parser="video_r1") == 1.0
    # relative error 0.12 < 1 - t for t = 0.50 ... 0.85 (8 of 10 thresholds)
    assert score_output(
        "synthetic", regression, "<answer>11.2</answer>", parser="video_r1"
    ) == pytest.approx(0.8)


def official_mean_relative_accuracy(pred, target, start=0.5, end=0.95, interval=0.05):
    """Video-R1's src/eval_bench.py ``mean_relative_accuracy``, as written there (float32)."""
    pred = torch.tensor(pred, dtype=torch.float32)
    target = torch.tensor(target, dtype=torch.float32)
    rel_error = torch.abs(pred - target) / (torch.abs(target) + 1e-8)
    thresholds = torch.arange(start, end + interval / 2, interval, dtype=torch.float32)
    return (rel_error < (1 - thresholds)).float().mean().item()


def test_video_r1_regression_is_scored_in_float32_as_the_official_code():
    regression = {**SYN_ROW, "problem_type": "regression", "solution": "<answer>10</answer>"}
    # relative error exactly 0.25: float32 0.75 -> 1 - t = 0.25, so '<' fails there (0.6 in float64)
    assert score_output("synthetic", regression, "<answer>7.5</answer>", parser="video_r1") == pytest.approx(0.5)
    values = [round(0.05 * i, 2) for i in range(0, 400)] + [1e39, -3.0, 1e-30]
    for gold in (10, 4, 0.2, 1e39, 7):
        row = {**SYN_ROW, "problem_type": "regression", "solution": f"<answer>{gold}</answer>"}
        for value in values:
            expected = official_mean_relative_accuracy(float(value), float(gold))
            got = score_output("synthetic", row, f"<answer>{value}</answer>", parser="video_r1")
            assert got == expected, (gold, value)
