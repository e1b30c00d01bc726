"""Tiny sizes for the ablation and demo runs in these tests."""

import dataclasses

from videoktr.experiments.policy import DemoConfig

TINY = {"num_rows": 30, "warmup_steps": 3, "warmup_prompts_per_step": 2, "rl_steps": 1, "num_generations": 2,
        "max_completion_length": 12, "eval_limit": 3, "attribution_limit": 2, "progress": False,
        "encoder_pretrain_steps": 2}


def tiny_demo(**overrides) -> DemoConfig:
    """A DemoConfig that runs in seconds; keys the demo does not have (yet) are left out."""
    names = {f.name for f in dataclasses.fields(DemoConfig)}
    return DemoConfig(**{k: v for k, v in {**TINY, **overrides}.items() if k in names})
