"""benchmarks/distributed_check.py, the script that checks a multi-process engine (FSDP2, ZeRO)
against one process on GPUs, works: on CPU, with DDP over gloo, it passes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port nobody listens on now: multi_cpu.yaml's default (29500) may be taken by another run."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_distributed_check_passes_for_ddp_on_cpu(tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "configs" / "accelerate" / "multi_cpu.yaml"), "--main_process_port", str(free_port()),
        str(REPO / "benchmarks" / "distributed_check.py"), "--use_cpu", "--workdir", str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "PASS: MULTI_CPU training equals single-process training" in result.stdout
    assert "completions: identical (4 prompts x G)" in result.stdout  # 2 steps x 2 processes, the image included
