"""`videoktr eval run` and `videoktr eval score` on a tiny model and a synthetic test split."""

import json
import warnings

from videoktr.cli import main
from videoktr.models.tiny import save_tiny_model
from videoktr.synthetic import generate_dataset


def test_eval_run_then_resume_then_score(tmp_path, capsys):
    generate_dataset(tmp_path / "world", 10, seed=0, test_fraction=0.3, progress=False)
    model_dir = save_tiny_model("qwen2_5_vl", tmp_path / "model")
    predictions = tmp_path / "predictions.jsonl"
    args = ["eval", "run", "--benchmark", "synthetic", "--data", str(tmp_path / "world"), "--model", str(model_dir),
            "--output", str(predictions), "--max-new-tokens", "8", "--temperature", "0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--limit", "2"]) == 0
        assert len(predictions.read_text().splitlines()) == 2
        assert main(args) == 0  # resumes: the first two are kept, the rest added
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == len({row["id"] for row in rows}) == 3
    out = capsys.readouterr().out
    assert "overall" in out and "summary:" in out
    summary = json.loads(predictions.with_suffix(".summary.json").read_text())
    assert summary["count"] == 3
    assert main(["eval", "score", "--benchmark", "synthetic", "--predictions", str(predictions), "--parser", "strict"]) == 0
    assert "strict" in capsys.readouterr().out
    assert summary["settings"]["model"] == str(model_dir.resolve())

    # a resume with other settings is refused, in one line, and loses nothing
    assert main([*args, "--num-frames", "8"]) == 2
    error = capsys.readouterr().err
    assert "Loading weights" not in error  # refused before the model loads
    assert "videoktr eval run: " in error and "num_frames" in error and "--overwrite" in error
    assert len(predictions.read_text().splitlines()) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--num-frames", "8", "--limit", "1", "--overwrite"]) == 0
    assert len(predictions.read_text().splitlines()) == 1


def test_eval_run_rejects_a_missing_model(tmp_path, capsys):
    generate_dataset(tmp_path / "world", 6, 0, progress=False)  # the data is checked first, and is fine
    code = main(["eval", "run", "--benchmark", "synthetic", "--data", str(tmp_path / "world"),
                 "--model", str(tmp_path / "nope"), "--output", str(tmp_path / "p.jsonl")])
    assert code == 2 and "not a model directory" in capsys.readouterr().err
