"""Trainer callbacks: a compact progress bar for RL runs.

transformers' ``ProgressCallback`` writes the whole metrics dict under its bar at every
logging step (and ``PrinterCallback``, used when tqdm is disabled, prints it); with
videoktr's ~20 RL metrics per step that buries everything else. ``CompactProgressCallback``
keeps one bar per training run and shows the few numbers worth watching in its postfix::

    RL video_ktr:  45%|####5     | 27/60 [00:31<00:38, reward=0.412 acc=0.375 sel=38% kl=0.0021 1.2s/step]

The full metrics still reach ``state.log_history`` and every ``report_to`` integration. Swap
it in with::

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(CompactProgressCallback("RL video_ktr"))
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from transformers import TrainerCallback

# (log key, postfix label, format) in display order; a key missing from the logs is left out.
POSTFIX_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("reward", "reward", "{:.3f}"),
    ("rewards/accuracy", "acc", "{:.3f}"),
    ("selected_fraction/union", "sel", "{:.0%}"),
    ("kl", "kl", "{:.2g}"),
)

# tqdm's default without its smoothed rate: the postfix carries the mean seconds per step.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


def format_postfix(logs: dict[str, Any], beta: float = 0.0, seconds_per_step: float | None = None) -> str:
    """The bar's postfix for one log entry: reward, accuracy reward, union selected fraction,
    KL (only when ``beta > 0``) and seconds per step, e.g. ``reward=0.41 acc=0.38 sel=38% 1.1s/step``."""
    parts = []
    for key, label, fmt in POSTFIX_FIELDS:
        if key == "kl" and not beta > 0:
            continue
        value = logs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            parts.append(f"{label}={fmt.format(value)}")
    if seconds_per_step is not None and seconds_per_step > 0:
        parts.append(f"{seconds_per_step:.2g}s/step" if seconds_per_step < 10 else f"{seconds_per_step:.0f}s/step")
    return " ".join(parts)


class CompactProgressCallback(TrainerCallback):
    """One tqdm bar per training run, advanced every optimizer step, with the key RL numbers
    (see ``format_postfix``) as its postfix. Never prints a metrics dict.

    Args:
        description: the bar's label, e.g. ``"RL video_ktr"``.
        disable: no bar at all (the callback then does nothing).
        leave: keep the finished bar on screen (``False`` suits a bar nested in an outer one).
        file: where the bar is drawn (default ``sys.stderr``, like tqdm).
    """

    def __init__(self, description: str = "RL", disable: bool = False, leave: bool = True,
                 file: TextIO | None = None) -> None:
        self.description = description
        self.disable = disable
        self.leave = leave
        self.file = file
        self.bar = None
        self.last_postfix = ""
        self._step = 0
        self._started: float | None = None
        self._first_step: int = 0

    def _seconds_per_step(self, global_step: int) -> float | None:
        steps = global_step - self._first_step
        if self._started is None or steps <= 0:
            return None
        return (time.perf_counter() - self._started) / steps

    def on_train_begin(self, args, state, control, **kwargs):
        if self.disable or not state.is_world_process_zero:
            return
        from tqdm.auto import tqdm

        self._step = self._first_step = state.global_step  # a resumed run starts part-way
        self._started = time.perf_counter()
        self.last_postfix = ""
        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.description, unit="step",
                        dynamic_ncols=True, leave=self.leave, file=self.file if self.file is not None else sys.stderr,
                        bar_format=BAR_FORMAT)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self._step)
            self._step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs or "reward" not in logs:  # skip the end-of-training summary
            return
        self.last_postfix = format_postfix(logs, beta=getattr(args, "beta", 0.0) or 0.0,
                                           seconds_per_step=self._seconds_per_step(state.global_step))
        self.bar.set_postfix_str(self.last_postfix, refresh=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
