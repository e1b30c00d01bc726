"""The label-rule benchmark runs on a saved policy and reports figures it can only get by scoring.

What the figures say about the demo's policy is read off the script's output (docs/demo.md), not here.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

from videoktr.data.dataset import VideoR1Dataset
from videoktr.experiments.policy import DemoConfig, prepare_policy
from videoktr.synthetic import generate_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "attribution_labels.py"


def test_scores_a_saved_policy_under_both_rules(tmp_path):
    world = tmp_path / "world"
    generate_dataset(world, 40, 0, test_fraction=0.25, fps=4, progress=False)
    config = DemoConfig(num_rows=40, encoder_pretrain_steps=1, warmup_steps=2, warmup_prompts_per_step=1,
                        progress=False, task="standard")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        policy = prepare_policy(config, VideoR1Dataset(world / "train.jsonl", fps=4, min_frames=4, max_frames=16))
    checkpoint = tmp_path / "policy"
    policy.model.save_pretrained(checkpoint)
    policy.processor.save_pretrained(checkpoint)

    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--checkpoint", str(checkpoint), "--world", str(world), "--limit", "4",
         "--json"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    world_rule, lexical = figures["precision"]["world"], figures["precision"]["lexical"]
    for signal in ("visual", "temporal", "entropy"):
        for label in ("visual", "temporal"):
            assert world_rule[signal][label]["tokens"] == lexical[signal][label]["tokens"] > 0
            # the same selections, counted against two label sets
            assert world_rule[signal][label]["selected_tokens"] == lexical[signal][label]["selected_tokens"]
    # the earlier rule gives the answer word's tags its label: more labelled tokens in every trace
    def labelled(rule):
        return sum(rule["visual"][label]["labelled_tokens"] for label in ("visual", "temporal"))

    assert labelled(lexical) >= labelled(world_rule) + 4 * 3  # "</think>", "<answer>", "</answer>"
    assert lexical["visual"]["temporal"]["labelled_tokens"] >= world_rule["visual"]["temporal"]["labelled_tokens"]
    assert set(figures["mean_score_by_label"]["visual"]) <= {"visual", "temporal", "neutral"}
    assert all(len(top) <= 10 for top in figures["top_tokens"].values())
