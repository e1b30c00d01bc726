"""The names and defaults DESIGN.md promises, imported the way users import them."""

import inspect
import subprocess
import sys

import pytest

import videoktr
from videoktr.cli import main

DESIGN_SIGNATURES = {
    "logprob_delta": "(logps, cf_logps, signed=False)",
    "token_entropy": "(logits, chunk_size=1024)",
    "group_advantages": "(rewards, group_size, scale='std', eps=0.0001)",
    "select_key_tokens": "(scores, completion_mask, ratio=0.2, scope='group', group_size=None, method='topk')",
    "grpo_loss": (
        "(logps, old_logps, advantages, completion_mask, token_weights=None, ref_logps=None, beta=0.0,"
        " epsilon_low=0.2, epsilon_high=0.2, aggregation='seq_mean', mask_kl=True, bias_correction_kl=False,"
        " max_completion_length=None, global_normaliser=None, importance_weights=None)"
    ),
}


def plain_signature(function) -> str:
    params = []
    for param in inspect.signature(function).parameters.values():
        params.append(param.name if param.default is param.empty else f"{param.name}={param.default!r}")
    return "(" + ", ".join(params) + ")"


@pytest.mark.parametrize("name", sorted(DESIGN_SIGNATURES))
def test_public_names_keep_the_design_signatures(name):
    assert name in videoktr.__all__
    assert plain_signature(getattr(videoktr, name)) == DESIGN_SIGNATURES[name]


@pytest.mark.parametrize("name", sorted(DESIGN_SIGNATURES))
def test_every_public_function_states_its_formula(name):
    doc = inspect.getdoc(getattr(videoktr, name))
    assert doc and "::" in doc, f"{name}'s docstring must contain a formula block"


def test_cli_help_lists_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: videoktr" in out and "env" in out


def test_cli_env_reports_versions(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert f"videoktr        {videoktr.__version__}" in out and "torch" in out


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "videoktr", "--help"], capture_output=True, text=True, check=True)
    assert "env" in result.stdout


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["trian"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_cli_tiny_model_writes_a_loadable_model(tmp_path, capsys):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videoktr.models import SUPPORTED_MODEL_TYPES
    from videoktr.models.tiny import FAMILIES

    assert FAMILIES == SUPPORTED_MODEL_TYPES  # every family we build has an adapter, and back
    assert main(["tiny-model", "--family", "qwen2_5_vl", "--out", str(tmp_path / "tiny")]) == 0
    assert str(tmp_path / "tiny") in capsys.readouterr().out
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "tiny")
    processor = AutoProcessor.from_pretrained(tmp_path / "tiny")
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert (tmp_path / "tiny" / "model.safetensors").exists()


def test_key_token_attributor_is_exported():
    assert "KeyTokenAttributor" in videoktr.__all__


def test_the_trainer_imports_from_the_package_root():
    from videoktr import KeyTokenAttributor, VideoGRPOConfig, VideoGRPOTrainer, load_config
    from videoktr.attribution import KeyTokenAttributor as attributor_class
    from videoktr.train.config import VideoGRPOConfig as config_class
    from videoktr.train.config import load_config as load
    from videoktr.train.trainer import VideoGRPOTrainer as trainer_class

    assert (KeyTokenAttributor, VideoGRPOConfig, VideoGRPOTrainer, load_config) == (
        attributor_class, config_class, trainer_class, load)
    for name in videoktr.__all__:
        assert getattr(videoktr, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'VideoGRPOTrainr'"):
        videoktr.VideoGRPOTrainr
