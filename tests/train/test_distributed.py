"""Two CPU processes (gloo) train for 2 steps through `accelerate launch`, as a multi-GPU job would."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

from .conftest import train_args  # noqa: E402


def launch_two_processes(worker: str, flags: list[str], tmp_path) -> dict:
    """Run ``tests/train/<worker>`` on 2 gloo processes; the findings rank 0 wrote."""
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "configs" / "accelerate" / "multi_cpu.yaml"),
        str(REPO / "tests" / "train" / worker), *flags,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIDEOKTR_DDP_REPORT": str(report), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(report.read_text())


def test_two_processes_train_checkpoint_and_stay_in_sync(tiny_model_dir, dataset_file, tmp_path):
    out = tmp_path / "run"
    findings = launch_two_processes(
        "ddp_worker.py",
        train_args(tiny_model_dir, dataset_file, out, "--per_device_train_batch_size", "1", "--use_cpu", "true"),
        tmp_path,
    )
    assert findings["world_size"] == 2 and findings["backend"] == "gloo"
    assert findings["global_step"] == 2
    first, second = findings["prompts_per_rank"]
    assert len(first) == len(second) == 2 and not set(first) & set(second)  # the data is sharded
    assert findings["max_weight_change"] > 0  # the weights moved ...
    assert findings["max_weight_difference"] == 0.0  # ... identically on both ranks: gradients all-reduced
    assert (out / "checkpoint-2" / "model.safetensors").exists()
    logged = [entry for entry in findings["log_history"] if "reward" in entry]
    assert logged and all("selected_fraction/union" in entry for entry in logged)


def test_dapo_normalises_by_the_tokens_of_every_process(tiny_model_dir, dataset_file, tmp_path):
    """TRL's dapo over 2 processes x 2 accumulated micro-batches of different token counts: the
    gradient the optimizer gets is the token mean over all four micro-batches."""
    flags = train_args(tiny_model_dir, dataset_file, tmp_path / "run", "--per_device_train_batch_size", "1",
                       "--use_cpu", "true", "--loss_type", "dapo", "--gradient_accumulation_steps", "2",
                       "--max_steps", "1", "--save_steps", "10", "--max_grad_norm", "0", "--beta", "0")
    findings = launch_two_processes("dapo_worker.py", flags, tmp_path)
    assert findings["world_size"] == 2
    counts = [count for rank in findings["tokens_per_rank"] for count in rank]
    assert len(counts) == 4 and len(set(counts)) > 1  # the micro-batches weigh differently
    assert findings["relative_difference"] < 1e-5
