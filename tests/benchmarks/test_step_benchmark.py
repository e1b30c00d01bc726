"""The step benchmark keeps working: it runs both presets through the trainer and reports every
field, with each round's ratio. Its targets are checked by running the script (docs/rollouts.md),
never here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "step.py"


def test_quick_step_benchmark_reports_every_field():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", "--device", "cpu", "--backends", "hf", "--rounds", "2",
         "--lora"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("grpo_step_s", "ktr_step_s", "time_ratio", "grpo_peak_mb", "ktr_peak_mb", "memory_ratio",
                "hf_tokens_per_s"):
        assert isinstance(summary[key], (int, float)) and summary[key] > 0, key
    assert len(summary["time_ratio_rounds"]) == 2
    for preset in ("grpo", "video_ktr"):
        run = summary["runs"]["hf"][preset]
        assert run["steps_measured"] == 2 * 2  # two rounds of two measured steps
        assert run["completion_tokens"] == 4 * 32  # a random policy runs every completion to its limit
        assert run["stages"]["generation_s"] > 0 and run["stages"]["loss_s"] > 0
    assert "vllm_tokens_per_s" not in summary
    # --lora: the LoRA run, and its memory above the loaded policy against full fine-tuning's
    assert summary["runs"]["hf"]["video_ktr_lora"]["steps_measured"] == 4
    assert 0 < summary["lora_peak_with_reference_mb"] and 0 < summary["full_peak_with_reference_mb"]
    # The ratio of the unrounded peaks: the printed MB, rounded to 0.1, can move its third decimal.
    assert summary["lora_memory_ratio"] == pytest.approx(
        summary["lora_peak_with_reference_mb"] / summary["full_peak_with_reference_mb"], abs=2e-3)
