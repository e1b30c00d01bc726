"""`videoktr rollout-server` and `videoktr tiny-model`'s sizes for a vLLM-servable model."""

import json

from videoktr.cli import main


def test_rollout_server_names_what_is_missing(tmp_path, capsys):
    assert main(["rollout-server", "--model", str(tmp_path), "--python", str(tmp_path / "none/bin/python")]) == 2
    assert "make vllm-env" in capsys.readouterr().err
    python = tmp_path / "python"
    python.write_text("")
    assert main(["rollout-server", "--model", str(tmp_path / "nowhere"), "--python", str(python)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_tiny_model_takes_the_head_size_vllm_needs(tmp_path, capsys):
    assert main(["tiny-model", "--family", "qwen2_5_vl", "--out", str(tmp_path / "m"), "--hidden-size", "128"]) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    text = config.get("text_config", config)
    assert text["hidden_size"] // text["num_attention_heads"] == 32
