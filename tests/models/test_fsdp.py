"""FSDP2 on CPU: two processes (gloo) shard tiny models with ``fully_shard`` and score, train and
generate through the adapter's root-forward path; everything equals the unsharded model.

accelerate maps FSDP to DDP on CPU, so this drives ``torch.distributed.fsdp.fully_shard``
directly (see ``fsdp_worker.py``); ``benchmarks/fsdp_check.py`` runs the trainer itself under
``accelerate launch`` with FSDP2 on GPUs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from videoktr.models.tiny import FAMILIES

REPO = Path(__file__).resolve().parents[2]
ATOL = 1e-5


@pytest.fixture(scope="module")
def fsdp_report(tmp_path_factory):
    report = tmp_path_factory.mktemp("fsdp") / "report.json"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPO / "tests" / "models" / "fsdp_worker.py"), str(report), *FAMILIES,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    findings = json.loads(report.read_text())
    assert findings["world_size"] == 2
    return findings["per_rank"]


@pytest.mark.parametrize("family", FAMILIES)
def test_sharded_scores_equal_the_unsharded_fast_path(fsdp_report, family):
    for rank, per_family in enumerate(fsdp_report):
        found = per_family[family]
        assert found["root_forward"] and found["reference_fast"]  # FSDP detected, and only there
        for key, value in found.items():
            if key.startswith("score/"):
                assert value <= ATOL, f"rank {rank} {key}: {value:.2e}"
    # rank 0 scored a video, rank 1 an image (no temporal signal): the image's placeholder
    # passes kept the two processes' collectives paired, or the run would have failed.
    assert not fsdp_report[0][family]["temporal_nan/zero_embeddings"]
    assert fsdp_report[1][family]["temporal_nan/zero_embeddings"]


@pytest.mark.parametrize("family", FAMILIES)
def test_sharded_training_forward_gives_the_averaged_unsharded_gradients(fsdp_report, family):
    for rank, per_family in enumerate(fsdp_report):
        found = per_family[family]
        for share_prefix in (True, False):
            suffix = f"share_prefix={share_prefix}"
            assert found[f"policy_logps/{suffix}"] <= ATOL, (rank, suffix)
            assert found[f"grad_missing/{suffix}"] == 0, (rank, suffix)
            assert found[f"grad/{suffix}"] <= ATOL, (rank, suffix, found[f"grad/{suffix}"])
            assert found[f"grad_visual_max/{suffix}"] > 0, (rank, suffix)
            assert found[f"grad_local_vs_mean/{suffix}"] > 1e-4, "both ranks had the same gradients: vacuous"


@pytest.mark.parametrize("family", FAMILIES)
def test_sharded_generation_with_uneven_lengths_matches_the_unsharded_model(fsdp_report, family):
    assert all(per_family[family]["generate_equal"] for per_family in fsdp_report)
