"""The order probe keeps working: it trains, evaluates at the asked steps and reports fractions.

Whether the model learns order is read off the script's output (see its docstring), not here.
"""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "order_probe.py"


def test_probe_reports_an_accuracy_curve_per_learning_rate(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "120", "--encoder-steps", "2", "--steps", "2",
         "--eval-every", "1", "--prompts-per-step", "2", "--lrs", "1e-3", "3e-4",
         "--world", str(tmp_path / "world"), "--json"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["chance"] == 0.25 and summary["train_encoder"] is False
    rows = summary["held_out_rows"]
    assert rows > 0
    assert set(summary["accuracy"]) == {"0.001", "0.0003"}
    for curve in summary["accuracy"].values():
        assert list(curve) == ["0", "1", "2"]
        for accuracy in curve.values():
            assert 0.0 <= accuracy <= 1.0
            assert abs(accuracy * rows - round(accuracy * rows)) < 1e-9  # a share of whole rows


def test_probe_refuses_a_world_without_queue_rows(tmp_path):
    from videoktr.synthetic import generate_dataset

    world = tmp_path / "world"
    generate_dataset(world, 40, 0, test_fraction=0.25, fps=4, progress=False)
    test_rows = [json.loads(line) for line in (world / "test.jsonl").read_text().splitlines()]
    still = [row for row in test_rows if row["family"] not in ("appeared_first", "appeared_after", "colour_of_first")]
    assert still and len(still) < len(test_rows)
    (world / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in still))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--encoder-steps", "1", "--world", str(world)],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "no queue-scene rows" in result.stderr
