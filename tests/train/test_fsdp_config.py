"""The trainer's FSDP settings: which accelerate FSDP configurations it accepts, and the shipped
configs/accelerate/fsdp.yaml. (FSDP itself runs on CPU in tests/models/test_fsdp.py; the trainer
under `accelerate launch` with FSDP2 needs GPUs: benchmarks/fsdp_check.py.)"""

from pathlib import Path

import pytest
import yaml
from accelerate.utils import FullyShardedDataParallelPlugin

from videoktr.models.tiny import FAMILIES, build_tiny_model
from videoktr.train.config import ConfigError, check_fsdp_plugin

REPO = Path(__file__).resolve().parents[2]


def test_fsdp2_is_accepted():
    check_fsdp_plugin(FullyShardedDataParallelPlugin(fsdp_version=2))


def test_fsdp1_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"FSDP version 1 is not supported; set fsdp_version: 2 .*zero3\.yaml"):
        check_fsdp_plugin(FullyShardedDataParallelPlugin(fsdp_version=1))


def test_shipped_fsdp_config_is_fsdp2_wrapping_every_familys_blocks():
    config = yaml.safe_load((REPO / "configs" / "accelerate" / "fsdp.yaml").read_text())
    fsdp = config["fsdp_config"]
    assert config["distributed_type"] == "FSDP" and fsdp["fsdp_version"] == 2
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    # No class list: accelerate wraps the model's own _no_split_modules, which every family has.
    assert "fsdp_transformer_layer_cls_to_wrap" not in fsdp
    for family in FAMILIES:
        model, _ = build_tiny_model(family, seed=0)
        present = {type(module).__name__ for module in model.modules()}
        assert set(model._no_split_modules) <= present, family
        assert any("DecoderLayer" in name for name in model._no_split_modules)
        assert any("VisionBlock" in name for name in model._no_split_modules)
