"""One output directory, one run: the readable run record, the refusals that keep two runs from
mixing, and ``latest`` passing over a checkpoint left incomplete by a crash."""

import json
import warnings
from pathlib import Path

import pytest

from videoktr.cli import main

from .conftest import train_args


def read_state(checkpoint_dir):
    return json.loads((checkpoint_dir / "trainer_state.json").read_text())


def train(tiny_model_dir, dataset_file, out, *extra) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["train", *train_args(tiny_model_dir, dataset_file, out, "--save_steps", "1", *extra)])


@pytest.fixture
def finished_run(tiny_model_dir, dataset_file, tmp_path):
    """A video_ktr run of 2 steps with checkpoints 1 and 2."""
    out = tmp_path / "run"
    assert train(tiny_model_dir, dataset_file, out, "--preset", "video_ktr") == 0
    return out


def test_the_run_record_says_what_was_trained(finished_run, tiny_model_dir):
    record = json.loads((finished_run / "videoktr_run.json").read_text())
    assert record["model"] == str(tiny_model_dir.resolve())
    assert record["method"]["preset"] == "video_ktr" and record["method"]["token_selection"] == "ktr"
    assert record["config"]["max_steps"] == 2


def test_latest_passes_over_a_checkpoint_left_incomplete(finished_run, tiny_model_dir, dataset_file, capsys):
    """What ``kill -9`` during a save leaves: a checkpoint directory with only the model's
    config files. Resuming ``latest`` once picked it and died in transformers."""
    partial = finished_run / "checkpoint-3"
    partial.mkdir()
    (partial / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    (partial / "generation_config.json").write_text("{}")
    capsys.readouterr()
    assert train(tiny_model_dir, dataset_file, finished_run, "--preset", "video_ktr", "--max_steps", "3",
                 "--resume_from_checkpoint", "latest") == 0
    assert "passed over checkpoint-3 (incomplete" in capsys.readouterr().err
    assert read_state(finished_run / "checkpoint-3")["global_step"] == 3


def test_a_fresh_run_over_another_runs_checkpoints_is_refused(finished_run, tiny_model_dir, dataset_file, capsys):
    capsys.readouterr()
    assert train(tiny_model_dir, dataset_file, finished_run, "--preset", "grpo") == 2
    assert "holds checkpoints of an earlier run (checkpoint-2)" in capsys.readouterr().err
    assert train(tiny_model_dir, dataset_file, finished_run, "--preset", "grpo", "--max_steps", "1",
                 "--overwrite_output_dir", "true") == 0
    assert sorted(p.name for p in finished_run.glob("checkpoint-*")) == ["checkpoint-1"]
    assert json.loads((finished_run / "videoktr_run.json").read_text())["method"]["preset"] == "grpo"


def test_resuming_with_another_method_is_refused(finished_run, tiny_model_dir, dataset_file, capsys):
    capsys.readouterr()
    assert train(tiny_model_dir, dataset_file, finished_run, "--preset", "entropy_80_20", "--max_steps", "3",
                 "--resume_from_checkpoint", "latest") == 2
    error = capsys.readouterr().err
    assert "is a run with other settings" in error and "preset: 'video_ktr' there, 'entropy_80_20' now" in error
    assert train(tiny_model_dir, dataset_file, finished_run, "--preset", "entropy_80_20", "--max_steps", "3",
                 "--resume_from_checkpoint", "latest", "--resume_despite_changes", "true") == 0
    assert read_state(finished_run / "checkpoint-3")["global_step"] == 3


def test_a_run_killed_while_saving_resumes_from_its_last_complete_checkpoint(tiny_model_dir, dataset_file, tmp_path):
    """``kill -9`` in the middle of writing checkpoint-2: no checkpoint-2 appears (it is written
    under .staging/ and renamed when complete), and ``latest`` resumes from checkpoint-1."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out, marker = tmp_path / "run", tmp_path / "saving"
    repo = Path(__file__).resolve().parents[2]
    flags = train_args(tiny_model_dir, dataset_file, out, "--save_steps", "1", "--max_steps", "3")
    env = {**os.environ, "PYTHONPATH": str(repo), "VIDEOKTR_SAVE_MARKER": str(marker), "OMP_NUM_THREADS": "1"}
    worker = subprocess.Popen([sys.executable, str(repo / "tests" / "train" / "kill_worker.py"), *flags],
                              env=env, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the worker never reached its second save"
            time.sleep(0.2)
        assert ".staging" in marker.read_text()  # the checkpoint being written is not yet in place
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait()
    assert sorted(path.name for path in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert read_state(out / "checkpoint-1")["global_step"] == 1

    assert train(tiny_model_dir, dataset_file, out, "--max_steps", "3", "--resume_from_checkpoint", "latest") == 0
    state = read_state(out / "checkpoint-3")
    assert state["global_step"] == 3
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3]
    assert read_state(out / "checkpoint-2")["global_step"] == 2
