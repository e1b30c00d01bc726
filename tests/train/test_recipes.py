"""Shipped recipes and accelerate configs stay valid as the configuration evolves."""

from pathlib import Path

import pytest
import yaml

from videoktr.train import PRESETS, load_config

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
ACCELERATE = {
    "ddp.yaml": "MULTI_GPU", "zero2.yaml": "DEEPSPEED", "zero3.yaml": "DEEPSPEED",
    "fsdp.yaml": "FSDP", "multi_cpu.yaml": "MULTI_GPU",
}


def test_a_recipe_per_preset():
    assert {path.name.split("_qwen")[0] for path in RECIPES} == set(PRESETS)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_recipe_loads_with_the_papers_settings(recipe, tmp_path):
    # bf16 needs a GPU; everything else is checked as a GPU run would check it
    config = load_config(["--output_dir", str(tmp_path), "--bf16", "false"], config_file=recipe)
    assert config.preset == recipe.name.split("_qwen")[0]
    assert (config.num_generations, config.beta, config.max_frames, config.max_completion_length) == (8, 0.04, 16, 768)
    # the official per-frame budget (tests/data/test_pixels.py follows it through the processor)
    assert (config.video_min_pixels, config.video_max_pixels, config.image_max_pixels) == (100352, 100352, 200704)
    assert config.max_pixels is None
    for key, value in PRESETS[config.preset].items():
        assert getattr(config, key) == value, key
    command = recipe.read_text().split("\n\n")[0]
    assert f"--config recipes/{recipe.name}" in command  # the documented command names this file


@pytest.mark.parametrize(("name", "engine"), sorted(ACCELERATE.items()))
def test_accelerate_configs_parse(name, engine):
    config = yaml.safe_load((REPO / "configs" / "accelerate" / name).read_text())
    assert config["distributed_type"] == engine
    if engine == "DEEPSPEED":
        assert config["deepspeed_config"]["zero_stage"] == int(name[4])
