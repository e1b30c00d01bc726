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
