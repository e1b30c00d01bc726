"""CompactProgressCallback: one bar with a short postfix, never a metrics dict."""

import io
from types import SimpleNamespace

from transformers import TrainerControl, TrainerState

from videoktr.train.callbacks import CompactProgressCallback, format_postfix

LOGS = {"loss": 0.0123, "grad_norm": 0.5, "learning_rate": 2e-5, "reward": 0.5, "rewards/accuracy": 0.375,
        "rewards/format": 1.0, "selected_fraction/union": 0.4, "selected_fraction/visual": 0.2, "kl": 0.00213,
        "clip_fraction": 0.0, "time/generation_s": 1.0, "epoch": 0.1}


def drive(beta, steps=3):
    stream = io.StringIO()
    callback = CompactProgressCallback("RL video_ktr", file=stream)
    args, control = SimpleNamespace(beta=beta), TrainerControl()
    state = TrainerState(max_steps=steps, is_world_process_zero=True)
    callback.on_train_begin(args, state, control)
    postfixes = []
    for step in range(1, steps + 1):
        state.global_step = step
        callback.on_step_end(args, state, control)
        callback.on_log(args, state, control, logs=dict(LOGS, reward=0.1 * step))
        postfixes.append(callback.last_postfix)
    callback.on_log(args, state, control, logs={"train_runtime": 3.0, "train_loss": 0.01})  # end-of-run summary
    callback.on_train_end(args, state, control)
    return stream.getvalue(), postfixes, callback


def test_bar_shows_key_numbers_and_no_dict(capsys):
    text, postfixes, callback = drive(beta=0.04)
    assert "RL video_ktr" in text and "3/3" in text
    assert "{" not in text and "'loss'" not in text and "grad_norm" not in text and "train_runtime" not in text
    last = postfixes[-1]
    assert last.startswith("reward=0.300 acc=0.375 sel=40% kl=0.0021 ") and last.endswith("s/step")
    assert "reward=0.300" in text and "sel=40%" in text
    assert callback.bar is None
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # everything went to the bar's stream


def test_kl_only_when_beta_is_positive():
    _, postfixes, _ = drive(beta=0.0)
    assert "kl=" not in postfixes[-1] and "reward=" in postfixes[-1]


def test_postfix_leaves_out_missing_keys():
    assert format_postfix({"reward": 0.25}) == "reward=0.250"
    assert format_postfix({"reward": 0.25, "rewards/accuracy": float("nan")}, seconds_per_step=12.4) == \
        "reward=0.250 12s/step"


def test_disabled_callback_draws_nothing():
    stream = io.StringIO()
    callback = CompactProgressCallback("RL", disable=True, file=stream)
    state = TrainerState(max_steps=2, is_world_process_zero=True)
    for event in ("on_train_begin", "on_step_end", "on_train_end"):
        getattr(callback, event)(SimpleNamespace(beta=0.0), state, TrainerControl())
    callback.on_log(SimpleNamespace(beta=0.0), state, TrainerControl(), logs=LOGS)
    assert stream.getvalue() == "" and callback.bar is None


def test_demo_prints_no_metrics_dicts_and_ablate_reproduces_the_demo(tmp_path, capsys):
    """A tiny demo run: the RL stage draws one compact bar, stdout holds no Trainer log dicts.
    ``videoktr ablate``'s V+E+T arm with the demo's sizes and seed then writes the demo's
    answers, word for word, before RL and after it: same world, warm-up, RL and evaluation."""
    import json
    import warnings

    from videoktr.ablate import AblationConfig, run_ablation
    from videoktr.demo import run_demo

    from .conftest import tiny_demo

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
