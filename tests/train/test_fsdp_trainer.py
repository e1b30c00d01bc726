"""The trainer under accelerate's FSDP2, end to end on 2 CPU processes: it trains to the same
weights as one plain process (benchmarks/distributed_check.py, run by fsdp_cpu_worker.py,
which switches accelerate's CPU state to FSDP with the shipped configs/accelerate/fsdp.yaml)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port nobody listens on now: multi_cpu.yaml's default (29500) may be taken by another run."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fsdp_environment(**changes) -> dict[str, str]:
    """The variables `accelerate launch --config_file configs/accelerate/fsdp.yaml` sets."""
    config = yaml.safe_load((REPO / "configs" / "accelerate" / "fsdp.yaml").read_text())["fsdp_config"]
    config.update(changes)
    env = {"ACCELERATE_USE_FSDP": "true"}
    for key, value in config.items():
        name = "FSDP_" + key.removeprefix("fsdp_").upper().replace("TRANSFORMER_LAYER_CLS_TO_WRAP", "TRANSFORMER_CLS_TO_WRAP")
        env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


@pytest.mark.parametrize(
    ("changes", "check_flags", "training_flags"),
    [
        ({}, ["--resume"], []),  # the shipped config; also resumes from its sharded checkpoint
        # FSDP's activation checkpointing: the loss runs full sequences (the encoder output tiled
        # over the G rows); T-GRPO's bonus: an image prompt generates in step with a video's.
        ({"fsdp_activation_checkpointing": True}, [], ["--temporal_reward_bonus", "true"]),
    ],
    ids=["shipped_config", "activation_checkpointing_and_t_grpo"],
)
def test_fsdp2_training_equals_one_process(tmp_path, changes, check_flags, training_flags):
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "configs" / "accelerate" / "multi_cpu.yaml"), "--main_process_port", str(free_port()),
        str(REPO / "tests" / "train" / "fsdp_cpu_worker.py"), "--use_cpu", "--workdir", str(tmp_path), *check_flags,
        "--", *training_flags,
    ]
    env = {**os.environ, **fsdp_environment(**changes), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FSDP: trainer path True, model sharded and scored through the root forward True" in result.stdout
    assert "PASS: FSDP training equals single-process training" in result.stdout
    if check_flags:
        assert "resumed from checkpoint-1, then rolled out and trained steps [1] (0-based)" in result.stdout
    if changes.get("fsdp_activation_checkpointing"):  # 2 decoder layers + 2 vision blocks
        assert "FSDP activation checkpointing: 4 blocks wrapped, loss on full sequences True" in result.stdout
    else:
        assert "FSDP activation checkpointing: 0 blocks wrapped, loss on full sequences False" in result.stdout
