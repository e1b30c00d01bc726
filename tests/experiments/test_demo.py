"""The demo pipeline runs end to end at a small size and writes everything it promises.

Its figures (accuracy, attribution precision) are measured by running `make demo` and
reported in docs/demo.md; here only the pipeline's behaviour is checked.
"""

import json
import warnings

import pytest

from videoktr.cli import main
from videoktr.experiments.demo import run_demo
from videoktr.experiments.policy import DemoConfig


@pytest.mark.parametrize("task", ["filler", "standard"])
def test_small_demo_writes_report_plots_and_summary(tmp_path, task):
    config = DemoConfig(task=task, output_dir=tmp_path / "demo", num_rows=36, test_fraction=0.2, encoder_pretrain_steps=3, warmup_steps=6, warmup_prompts_per_step=2,
                        rl_steps=2, num_generations=3, max_completion_length=24, eval_limit=6,
                        attribution_limit=4, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_demo(config, json_path=tmp_path / "figures.json")
    out = tmp_path / "demo"
    for name in ("report.html", "summary.json", "reward_curve.png", "accuracy.png", "attribution_precision.png",
                 "eval_before.jsonl", "eval_after.jsonl", "world/train.jsonl", "world/test.jsonl"):
        assert (out / name).exists(), name
    written = json.loads((tmp_path / "figures.json").read_text())
    kinds = {"overall", "visual"} if task == "filler" else {"overall", "visual", "temporal", "both"}
    assert written["accuracy_before"].keys() == kinds  # the kinds the world asks
    assert written["rl"]["steps"] == 2
    assert written["encoder_labels"].keys() == {"precision", "recall", "token_accuracy"}
    for signal in ("visual", "temporal", "entropy"):
        for label in ("visual", "temporal"):
            quality = written["attribution"][signal][label]
            assert 0.0 <= quality["precision"] <= 1.0 and quality["tokens"] > 0
            assert 0.15 <= quality["random_recall"] <= 0.3  # each signal selected about 20% of tokens
    html = (out / "report.html").read_text()
    assert html.count("class='ex'") == 4 and "title=" in html
    assert summary == written
    assert len((out / "eval_after.jsonl").read_text().splitlines()) == 6


def test_demo_command_is_wired(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "--quick" in capsys.readouterr().out


def test_each_task_brings_its_own_stage_defaults_and_explicit_values_win():
    from videoktr.experiments.policy import TASK_DEFAULTS

    filler, standard = DemoConfig(), DemoConfig(task="standard")
    assert filler.task == "filler" and filler.warmup_teacher_confusion_rate == 0.6
    assert filler.warmup_teacher_confusions == {"yellow": "green", "blue": "red"}
    assert (standard.encoder_pretrain_steps, standard.warmup_steps, standard.warmup_teacher_confusion_rate) == (1200, 1000, 0.0)
    assert filler.encoder_pretrain_steps < standard.encoder_pretrain_steps
    assert DemoConfig(task="filler_own", warmup_steps=7).warmup_steps == 7
    # each config holds its own copy of the task's confusions
    filler.warmup_teacher_confusions["red"] = "blue"
    assert "red" not in DemoConfig().warmup_teacher_confusions and "red" not in TASK_DEFAULTS["filler"]["warmup_teacher_confusions"]
    with pytest.raises(ValueError, match="unknown task 'noise'"):
        DemoConfig(task="noise")
