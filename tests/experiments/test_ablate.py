"""videoktr ablate: the arms' trainer settings, the statistics, resuming, and a tiny end-to-end run."""

import csv
import json
import math
import warnings

import pytest

from videoktr.cli import main
from videoktr.experiments import ablate
from videoktr.experiments.ablate import (
    ARMS,
    PAPER_ARMS,
    RUN_COLUMNS,
    AblationConfig,
    AblationError,
    aggregate,
    best_learning_rates,
    format_table,
    pending_runs,
    read_rows,
    run_ablation,
    write_csvs,
)
from videoktr.experiments.policy import DemoConfig
from videoktr.train.config import load_config

from .conftest import tiny_demo

ALL = ("visual", "temporal", "entropy")
EXPECTED = {  # arm: (token_selection, selected signals, ratio, weighting)
    "grpo": ("none", (), None, None),
    "E": ("ktr", ("entropy",), 0.2, "hard"),
    "V": ("ktr", ("visual",), 0.2, "hard"),
    "T": ("ktr", ("temporal",), 0.2, "hard"),
    "V+E+T": ("ktr", ALL, 0.2, "hard"),
    "V+E+T:r=0.1": ("ktr", ALL, 0.1, "hard"),
    "V+E+T:r=0.4": ("ktr", ALL, 0.4, "hard"),
    "V+E+T:soft": ("ktr", ALL, 0.2, "sigmoid"),
    "V+E+T:mass": ("ktr", ALL, 0.2, "hard"),  # ktr_ratio is unused under the mass rule
    "E:mass": ("ktr", ("entropy",), 0.2, "hard"),
}


@pytest.mark.parametrize("arm", list(ARMS))
def test_arm_overrides_give_the_intended_trainer_config(arm, tmp_path):
    # As policy.train_rl merges them: the video_ktr preset and the demo's ratio (unless the arm
    # selects no tokens, where a ratio would be refused as meaningless), then the arm's keys.
    ratio = {} if ARMS[arm].get("token_selection") == "none" else {"ktr_ratio": "0.3"}
    config = load_config(**{"preset": "video_ktr", "output_dir": str(tmp_path), **ratio, **ARMS[arm]})
    selection, signals, ratio, weighting = EXPECTED[arm]
    assert config.token_selection == selection
    assert set(config.selected_signals) == set(signals)
    assert config.temporal_reward_bonus is False and config.ktr_scope == "group"
    if selection != "none":
        assert config.ktr_ratio == ratio and config.ktr_weighting == weighting
    expected_rule = ("mass", 0.5, 0.05, 0.5) if arm.endswith(":mass") else ("fixed", 0.5, 0.05, 0.5)
    assert (config.ktr_ratio_rule, config.ktr_mass, config.ktr_min_ratio, config.ktr_max_ratio) == expected_rule


def test_every_arm_of_the_brief_is_there():
    assert list(ARMS) == list(EXPECTED)
    assert PAPER_ARMS == tuple(arm for arm in ARMS if not arm.endswith(":mass"))


def test_train_passes_the_overrides_seed_and_output_dir(monkeypatch, tmp_path):
    from videoktr.experiments import policy

    seen = {}

    class FakeTrainer:
        def __init__(self, model, args, train_dataset, processing_class):
            seen["args"] = args
            self.callbacks = []
            self.state = type("State", (), {"log_history": [{"reward": 0.5, "step": 1}, {"train_runtime": 1.0}]})()

        def remove_callback(self, callback):
            seen.setdefault("removed", []).append(callback.__name__)

        def add_callback(self, callback):
            seen["added"] = callback

        def train(self):
            pass

    monkeypatch.setattr(policy, "VideoGRPOTrainer", FakeTrainer)
    model = type("Model", (), {"eval": lambda self: None})()
    logs = policy.train_rl(model, None, None, DemoConfig(rl_steps=5, progress=False), overrides=ARMS["V+E+T:r=0.4"],
                           seed=7, output_dir=tmp_path / "rl", label="V+E+T:r=0.4")
    args = seen["args"]
    assert logs == [{"reward": 0.5, "step": 1}]
    assert args.seed == 7 and args.output_dir == str(tmp_path / "rl") and args.max_steps == 5
    assert args.ktr_ratio == 0.4 and args.selected_signals == ALL
    assert seen["removed"] == ["ProgressCallback", "PrinterCallback"]
    assert seen["added"].description == "RL V+E+T:r=0.4" and seen["added"].disable


def test_unknown_arm_is_a_clear_error(capsys):
    with pytest.raises(AblationError, match="unknown arm.*'nope'.*grpo, E, V, T, V\\+E\\+T"):
        AblationConfig(arms=("grpo", "nope"))
    assert main(["ablate", "--arms", "V", "nope", "--out", "unused"]) == 2
    error = capsys.readouterr().err
    assert "nope" in error and "V+E+T:soft" in error


def test_quick_and_explicit_sizes():
    demo = tiny_demo(rl_steps=60, eval_limit=None, rl_prompts_per_step=4)
    assert (AblationConfig(demo=demo).rl_steps, AblationConfig(demo=demo).eval_limit) == (60, None)
    quick = AblationConfig(quick=True, demo=demo)
    assert quick.eval_limit == ablate.QUICK_EVAL_LIMIT
    per_step = getattr(demo, "rl_prompts_per_step", 1)  # the demo may not have the key
    assert quick.rl_steps == math.ceil(ablate.QUICK_RL_PROMPTS / per_step) < demo.rl_steps
    assert AblationConfig(quick=True, rl_steps=3, demo=demo).rl_steps == 3
    assert AblationConfig().seeds == (0, 1, 2) and AblationConfig().arms == PAPER_ARMS
    with pytest.raises(AblationError):
        AblationConfig(seeds=())
    with pytest.raises(AblationError):
        AblationConfig(rl_steps=0)


def row(arm, seed, overall, visual=0.5, temporal=0.25, both=0.0):
    return {"arm": arm, "seed": seed, "overall": overall, "visual": visual, "temporal": temporal, "both": both,
            "eval_questions": 8, "rl_steps": 2, "reward_first": 0.1, "reward_last": 0.2, "selected_fraction": 0.4,
            "rl_seconds": 1.0, "eval_seconds": 1.0}


def test_aggregate_mean_and_sample_std_over_seeds(tmp_path):
    rows = [row("V", 0, 0.2, visual=0.1), row("V", 1, 0.3, visual=0.1), row("V", 2, 0.4, visual=0.1),
            row("grpo", 0, 0.5), row("grpo", 5, 0.9)]
    summary = aggregate(rows, ["grpo", "V", "T"], seeds=[0, 1, 2])
    assert [entry["arm"] for entry in summary] == ["grpo", "V"]  # T has no rows; grpo's seed 5 is not asked
    grpo, v = summary
    assert grpo["seeds"] == [0] and grpo["overall_mean"] == 0.5 and grpo["overall_std"] == 0.0
    assert v["seeds"] == [0, 1, 2]
    assert math.isclose(v["overall_mean"], 0.3) and math.isclose(v["overall_std"], 0.1)  # n - 1 in the std
    assert math.isclose(v["visual_mean"], 0.1) and v["visual_std"] == 0.0
    assert (v["E"], v["V"], v["T"], v["ratio"], v["weighting"]) == ("", "x", "", "0.2", "hard")

    table = format_table(summary, before={"overall": 0.125, "visual": 0.25, "temporal": 0.0, "both": 0.0})
    lines = table.splitlines()
    assert lines[2].startswith("warm-up (no RL)") and "12.5" in lines[2] and "±" not in lines[2]
    assert lines[4].startswith("V ") and "30.0 ± 10.0" in lines[4] and "10.0 ± 0.0" in lines[4]

    runs_csv, summary_csv = write_csvs(tmp_path, rows[:3], summary, before={k: 0.1 for k in ablate.KINDS})
    with runs_csv.open() as handle:
        per_run = list(csv.DictReader(handle))
    assert tuple(per_run[0]) == RUN_COLUMNS and len(per_run) == 3 and per_run[2]["overall"] == "0.4"
    with summary_csv.open() as handle:
        table_rows = list(csv.DictReader(handle))
    assert list(table_rows[0]) == ["arm", "E", "V", "T", "ratio", "weighting", "n_seeds", "seeds",
                                   "overall_mean", "overall_std", "visual_mean", "visual_std",
                                   "temporal_mean", "temporal_std", "both_mean", "both_std"]
    assert [r["arm"] for r in table_rows] == ["warm-up (no RL)", "grpo", "V"]
    assert table_rows[2]["seeds"] == "0 1 2" and math.isclose(float(table_rows[2]["overall_std"]), 0.1)


def test_resume_skips_finished_runs_and_repairs_a_cut_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(row("grpo", 0, 0.5)) + "\n" + json.dumps(row("V", 1, 0.2)) + "\n" + '{"arm": "V", "se')
    rows = read_rows(path)
    assert [(r["arm"], r["seed"]) for r in rows] == [("grpo", 0), ("V", 1)]
    assert path.read_text().endswith("}\n")  # the cut-off write is gone
    config = AblationConfig(arms=("grpo", "V"), seeds=(0, 1))
    lr = config.demo.rl_learning_rate
    assert pending_runs(config, rows) == [("V", lr, 0), ("grpo", lr, 1)]
    grid = AblationConfig(arms=("grpo",), seeds=(0,), learning_rates=(1e-4, lr))
    assert pending_runs(grid, rows) == [("grpo", 1e-4, 0)]  # the demo's rate of seed 0 is done


def test_best_learning_rate_per_arm_by_mean_accuracy():
    config = AblationConfig(arms=("grpo", "V"), seeds=(0, 1), learning_rates=(1e-5, 1e-4))
    rows = [{"arm": "grpo", "seed": s, "learning_rate": lr, "overall": acc}
            for s, lr, acc in [(0, 1e-5, 0.5), (1, 1e-5, 0.6), (0, 1e-4, 0.7), (1, 1e-4, 0.5)]]
    rows += [{"arm": "V", "seed": s, "learning_rate": lr, "overall": 0.4} for s in (0, 1) for lr in (1e-5, 1e-4)]
    rows += [{"arm": "V", "seed": 2, "learning_rate": 1e-4, "overall": 1.0}]  # a seed not configured: ignored
    assert best_learning_rates(config, rows) == {"grpo": 1e-4, "V": 1e-5}  # 0.60 against 0.55; a tie: the smaller
    with pytest.raises(AblationError, match="learning_rates must be distinct positive numbers"):
        AblationConfig(learning_rates=(1e-4, 1e-4))


def tiny_config(out, **kwargs):
    return AblationConfig(output_dir=out, arms=("grpo", "V+E+T"), seeds=(0, 1), demo=tiny_demo(), **kwargs)


def test_tiny_ablation_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "ablation"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_ablation(tiny_config(out, progress=True), json_path=tmp_path / "copy.json")
    captured = capsys.readouterr()
    for name in ("ablation.csv", "ablation_summary.csv", "ablation.png", "ablation.json", "runs.jsonl",
                 "settings.json", "warmup/config.json", "warmup/warmup.json", "eval_warmup.jsonl",
                 "runs/V_E_T-seed1/eval.jsonl"):
        assert (out / name).exists(), name
    assert [entry["arm"] for entry in result["summary"]] == ["grpo", "V+E+T"]
    assert all(entry["seeds"] == [0, 1] for entry in result["summary"])
    assert json.loads((tmp_path / "copy.json").read_text()) == json.loads((out / "ablation.json").read_text())
    assert len(result["runs"]) == 4 and all(r["eval_questions"] == 3 and r["rl_steps"] == 1 for r in result["runs"])
    table = captured.out.split("videoktr ablate: test accuracy")[1]
    assert "warm-up (no RL)" in table and "\ngrpo " in table and "\nV+E+T " in table and " ± " in table
    assert all(math.isfinite(r["answer_logprob"]) and r["answer_logprob"] < 0 for r in result["runs"])
    assert result["warmup"]["heldout_before"]["rows"] == 3 and len(result["paired_answer_logprob"]) == 1
    assert len(result["paired_key_logprob"]) == 1
    for r in result["runs"]:  # the mean of the logged grad_share/* over the run's steps
        shares = r["grad_shares"]
        assert 0.0 <= shares["unselected"] <= 1.0 and (r["arm"] != "grpo" or shares["unselected"] == 0.0)
        assert r["arm"] == "grpo" or set(shares) >= {"unselected", "visual", "temporal", "entropy"}
    assert all([point["step"] for point in r["heldout_curve"]] == [1] for r in result["runs"])  # 1 RL step here
    assert all(r["heldout_curve"][-1]["answer"] == r["answer_logprob"] for r in result["runs"])
    assert "log p(correct answer block | prompt, correct reasoning)" in captured.out
    assert "log p(reasoning's last word + answer block" in captured.out
    [paired] = result["paired"]  # V+E+T against grpo, paired by seed
    assert paired["arm"] == "V+E+T" and paired["seeds"] == [0, 1]
    assert paired["ahead"] + paired["level"] + paired["behind"] == 2
    assert "paired by seed against grpo" in captured.out
    assert result["settings"]["shared_overrides"] == {"mask_kl": False, "freeze_vision_encoder": True}
    # the pairing is real: every arm of a seed gets the same prompts and the same first rollouts
    for seed in (0, 1):
        first = {}
        for arm_dir in ("grpo", "V_E_T"):
            dumps = sorted((out / "runs" / f"{arm_dir}-seed{seed}").rglob("step000001-rank0.jsonl"))
            assert dumps, arm_dir
            first[arm_dir] = [(r["prompt_id"], r["token_ids"]) for r in map(json.loads, dumps[0].read_text().splitlines())]
        assert first["grpo"] == first["V_E_T"] and first["grpo"]
    # Training shows one compact bar per run, no metrics dicts.
    assert "{'loss'" not in captured.out and "{'" not in captured.out and "{'loss'" not in captured.err
    assert "RL V+E+T seed 1" in captured.err and "reward=" in captured.err

    # A second call finds everything done: nothing is trained again.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = run_ablation(tiny_config(out, progress=False))
    assert len((out / "runs.jsonl").read_text().splitlines()) == 4
    assert "reusing" in capsys.readouterr().out
    assert again["summary"] == result["summary"]
    # Other sizes in the same directory are refused.
    with pytest.raises(AblationError, match="other settings.*rl_steps"):
        run_ablation(AblationConfig(output_dir=out, arms=("grpo",), seeds=(0,), rl_steps=2,
                                    demo=tiny_config(out).demo, progress=False))


def test_ablate_command_is_wired(capsys):
    with pytest.raises(SystemExit):
        main(["ablate", "--help"])
    text = capsys.readouterr().out
    assert "--quick" in text and "--seeds" in text and "--arms" in text and "--rl-steps" in text


def test_demo_prints_no_metrics_dicts_and_ablate_reproduces_the_demo(tmp_path, capsys):
    """A tiny demo run: the RL stage draws one compact bar, stdout holds no Trainer log dicts.
    ``videoktr ablate``'s V+E+T arm with the demo's sizes and seed then writes the demo's
    answers, word for word, before RL and after it: same world, warm-up, RL and evaluation."""
    from videoktr.experiments.demo import run_demo

    config = tiny_demo(output_dir=tmp_path / "demo", rl_steps=3, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_demo(config)
    captured = capsys.readouterr()
    assert summary["rl"]["steps"] == 3
    for stream in (captured.out, captured.err):
        assert "{'loss'" not in stream and "'train_runtime'" not in stream and "'grad_norm'" not in stream
    assert "RL video_ktr" in captured.err and "3/3" in captured.err and "reward=" in captured.err

    out = tmp_path / "ablation"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_ablation(AblationConfig(output_dir=out, arms=("V+E+T",), seeds=(config.seed,), demo=config,
                                    progress=False))

    def outputs(path):
        return [json.loads(line)["output"] for line in path.read_text().splitlines()]

    assert outputs(out / "eval_warmup.jsonl") == outputs(tmp_path / "demo" / "eval_before.jsonl")
    assert outputs(out / "runs" / "V_E_T-seed0" / "eval.jsonl") == outputs(tmp_path / "demo" / "eval_after.jsonl")


def test_a_learning_rate_grid_runs_every_rate_and_reports_each_arm_at_its_best(tmp_path, capsys):
    out = tmp_path / "grid"
    config = AblationConfig(output_dir=out, arms=("grpo",), seeds=(0,), demo=tiny_demo(), progress=False,
                            learning_rates=(1e-5, 1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_ablation(config)
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["grpo-lr0.001-seed0", "grpo-lr1e-05-seed0"]
    assert len(result["all_runs"]) == 2 and len(result["runs"]) == 1
    best = result["best_learning_rates"]["grpo"]
    assert result["runs"][0]["learning_rate"] == best
    chosen = {run["learning_rate"]: run["overall"] for run in result["all_runs"]}
    assert chosen[best] == max(chosen.values())
    assert "learning rate per arm (the best of 1e-05, 0.001" in capsys.readouterr().out
