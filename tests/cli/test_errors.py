"""Every expected failure of the CLI is one line, ``videoktr <command>: <what, where>``, and a
non-zero exit; ``--debug`` (or VIDEOKTR_DEBUG=1) shows the traceback instead."""

import os
import pickle
import warnings

import pytest

from videoktr.cli import main

UNWRITABLE = "/proc/videoktr-cannot-write-here"


def last_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    from transformers import GPT2Config

    directory = tmp_path_factory.mktemp("gpt2")
    GPT2Config(n_layer=1, n_embd=32, n_head=2).save_pretrained(directory)
    return directory


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this-should-never-run",))


@pytest.fixture(scope="module")
def pickled_model_dir(tmp_path_factory):
    from videoktr.models.tiny import save_tiny_model

    directory = save_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("pickled") / "model")
    (directory / "model.safetensors").unlink()
    with open(directory / "pytorch_model.bin", "wb") as handle:
        pickle.dump(RunsCode(), handle)
    return directory


def test_train_checks_the_dataset_before_loading_the_model(tmp_path, capsys):
    assert main(["train", "--model", str(tmp_path / "no-model"), "--dataset", str(tmp_path / "nope.jsonl"),
                 "--output_dir", str(tmp_path / "out")]) == 2
    assert last_error_line(capsys) == f"videoktr train: {tmp_path / 'nope.jsonl'}: no such dataset file"
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["train", "--model", str(tmp_path), "--dataset", str(tmp_path / "bad.json"),
                 "--output_dir", str(tmp_path / "out")]) == 2
    assert last_error_line(capsys).startswith(f"videoktr train: {tmp_path / 'bad.json'}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from videoktr.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("world"), 6, 0, progress=False).out_dir


def test_a_model_of_another_family_is_named_with_the_supported_ones(gpt2_dir, world, capsys, tmp_path):
    assert main(["eval", "run", "--benchmark", "synthetic", "--data", str(world), "--model", str(gpt2_dir),
                 "--output", str(tmp_path / "p.jsonl")]) == 2
    assert "is a 'gpt2' model; videoktr trains and evaluates the video LLM families qwen2_vl, qwen2_5_vl, qwen3_vl" in (
        last_error_line(capsys))


def test_pickled_weights_that_run_code_are_refused(pickled_model_dir, world, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["eval", "run", "--benchmark", "synthetic", "--data", str(world),
                     "--model", str(pickled_model_dir), "--output", str(tmp_path / "p.jsonl")]) == 2
    assert "holds pickled weights that would run code when loaded" in last_error_line(capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["synth", "--out", UNWRITABLE, "--n", "2"],
        ["tiny-model", "--family", "qwen2_vl", "--out", UNWRITABLE],
        ["analyze", "tests/fixtures/rollouts", "--html", f"{UNWRITABLE}/report.html"],
    ],
    ids=["synth", "tiny-model", "analyze"],
)
def test_an_output_that_cannot_be_written_is_one_line(argv, capsys):
    assert main(argv) == 2
    line = last_error_line(capsys)
    assert line.startswith(f"videoktr {argv[0]}: ") and UNWRITABLE in line


def test_train_and_eval_refuse_an_unwritable_output_before_loading_the_model(world, tiny_model_dir, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", "--model", str(tiny_model_dir), "--dataset", str(world / "train.jsonl"),
                     "--output_dir", f"{UNWRITABLE}/run", "--max_steps", "1"]) == 2
        train_error = capsys.readouterr().err
        assert main(["eval", "run", "--benchmark", "synthetic", "--data", str(world), "--model", str(tiny_model_dir),
                     "--output", f"{UNWRITABLE}/p.jsonl"]) == 2
        eval_error = capsys.readouterr().err
    assert f"videoktr train: output_dir {UNWRITABLE}/run cannot be written" in train_error
    assert f"videoktr eval run: --output {UNWRITABLE}/p.jsonl: its folder cannot be created" in eval_error
    assert "Loading weights" not in train_error + eval_error


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parser", "bogus"], "unknown parser 'bogus'"),
        (["--limit", "-1"], "limit must be None or an int >= 0"),
        (["--temperature", "-1"], "temperature must be a finite number >= 0"),
    ],
)
def test_eval_argument_errors_are_one_line(argv, message, world, tmp_path, capsys):
    """Checked before the model loads: the model path here does not even exist."""
    assert main(["eval", "run", "--benchmark", "synthetic", "--data", str(world), "--model",
                 str(tmp_path / "no-model"), "--output", str(tmp_path / "p.jsonl"), *argv]) == 2
    assert message in last_error_line(capsys)


@pytest.mark.parametrize("flag", ["--num_frames", "--batch_size"])
def test_eval_counts_of_zero_are_refused_by_the_parser(flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "run", "--benchmark", "synthetic", "--data", "d", "--model", "m", "--output", "o", flag, "0"])
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_missing_data_or_predictions_are_one_line(tiny_model_dir, tmp_path, capsys):
    assert main(["eval", "run", "--benchmark", "video_holmes", "--data", str(tmp_path / "nowhere"),
                 "--model", str(tiny_model_dir), "--output", str(tmp_path / "p.jsonl")]) == 2
    assert last_error_line(capsys).startswith("videoktr eval run: ")
    assert main(["eval", "score", "--benchmark", "mmvu", "--predictions", str(tmp_path / "none.jsonl")]) == 2
    assert last_error_line(capsys).endswith("none.jsonl: no such predictions file")


def test_ctrl_c_during_training_says_how_to_resume(tiny_model_dir, dataset_file, tmp_path, monkeypatch, capsys):
    from tests.train.conftest import train_args
    from videoktr.train.trainer import VideoGRPOTrainer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(VideoGRPOTrainer, "train", interrupted)
    assert main(["train", *train_args(tiny_model_dir, dataset_file, tmp_path / "run")]) == 130
    assert last_error_line(capsys) == ("videoktr train: interrupted at step 0; no checkpoint was saved yet: continue "
                                       "with --resume_from_checkpoint latest")


def test_debug_shows_the_traceback(monkeypatch):
    from videoktr.data.rollouts import RolloutDumpError

    with pytest.raises(RolloutDumpError):
        main(["--debug", "analyze", "/nowhere"])
    monkeypatch.setenv("VIDEOKTR_DEBUG", "1")
    with pytest.raises(RolloutDumpError):
        main(["analyze", "/nowhere"])
