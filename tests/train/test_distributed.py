"""Two CPU processes (gloo) train for 2 steps through `accelerate launch`, as a multi-GPU job would."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

from .conftest import train_args  # noqa: E402


def test_two_processes_train_checkpoint_and_stay_in_sync(tiny_model_dir, dataset_file, tmp_path):
    report = tmp_path / "report.json"
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "configs" / "accelerate" / "multi_cpu.yaml"),
        str(REPO / "tests" / "train" / "ddp_worker.py"),
        *train_args(tiny_model_dir, dataset_file, out, "--per_device_train_batch_size", "1", "--use_cpu", "true"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIDEOKTR_DDP_REPORT": str(report), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    findings = json.loads(report.read_text())
    assert findings["world_size"] == 2 and findings["backend"] == "gloo"
    assert findings["global_step"] == 2
    first, second = findings["prompts_per_rank"]
    assert len(first) == len(second) == 2 and not set(first) & set(second)  # the data is sharded
    assert findings["max_weight_change"] > 0  # the weights moved ...
    assert findings["max_weight_difference"] == 0.0  # ... identically on both ranks: gradients all-reduced
    assert (out / "checkpoint-2" / "model.safetensors").exists()
    logged = [entry for entry in findings["log_history"] if "reward" in entry]
    assert logged and all("selected_fraction/union" in entry for entry in logged)
