"""``videoktr ablate``: the paper's ablations on the synthetic world, from one warm-up checkpoint.

    synthesize the demo's world -> build the demo's policy -> warm up once -> evaluate ("before")
    -> save the checkpoint -> for each seed, for each arm: load the checkpoint, RL with the arm's
    trainer settings, evaluate, append a row to runs.jsonl -> mean ± std per arm -> table, CSV, plot

The arms (``ARMS``) are trainer configuration overrides on top of the demo's ``video_ktr``
run: vanilla GRPO, each signal alone, the V+E+T union at ratios 0.1 / 0.2 / 0.4, and the union
with soft (sigmoid) weights instead of the hard mask (the paper's, ``PAPER_ARMS``, the default);
and, by name, the union with the adaptive ratio by score mass. Everything but the arm's keys and the RL
seed is the same in every run: the world, the warm-up checkpoint, the RL hyper-parameters and
the evaluation (greedy, the demo's settings).

An interrupted ablation resumes: ``settings.json`` pins the sizes of the output directory, the
warm-up checkpoint is reused once written, and ``(arm, seed)`` pairs already in ``runs.jsonl``
are skipped. Arms and seeds can be added to a finished directory later.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import defaults
from ..core.signals import SIGNALS
from ..eval import run_evaluation
from ..models import load_local_model
from ..synthetic import generate_dataset
from .ablation_results import (
    KINDS,
    RUN_COLUMNS,
    AblationError,
    append_row,
    check_settings,
    format_paired_table,
    format_table,
    mean_std,
    paired_differences,
    read_rows,
    write_csvs,
    write_plot,
)
from .demo import accuracy_by_kind
from .heldout import HeldoutCurve, heldout_logprobs
from .policy import (
    SHARED_OVERRIDES,
    DemoConfig,
    evaluation_settings,
    prepare_policy,
    train_rl,
    world_split,
)

__all__ = ["ARMS", "PAPER_ARMS", "QUICK_EVAL_LIMIT", "QUICK_RL_PROMPTS", "RUN_COLUMNS", "AblationConfig", "AblationError",
           "aggregate", "arm_description", "best_learning_rates", "format_table", "pending_runs", "read_rows", "run_ablation",
           "write_csvs"]

SIGNAL_LETTERS = {"entropy": "E", "visual": "V", "temporal": "T"}


def _ktr(signals, ratio: float = 0.2, weighting: str = "hard") -> dict[str, Any]:
    return {"token_selection": "ktr", "ktr_signals": list(signals), "ktr_ratio": ratio, "ktr_weighting": weighting}


MASS_RULE = {"ktr_ratio_rule": "mass", "ktr_mass": 0.5, "ktr_min_ratio": 0.05, "ktr_max_ratio": 0.5}

# Arm name -> trainer configuration keys (``videoktr.train.config``) that override the demo's
# ``video_ktr`` run. Names are shell-safe so that ``--arms V+E+T:r=0.1`` needs no quoting.
# The soft arm uses sigmoid weights (``core.selection.soft_token_weights``: half weight at the
# top-r rank boundary, tau 0.05), the soft counterpart of the hard top-20% mask and the
# official code's rank-sigmoid; the paper reports only that hard beat every soft scheme.
ARMS: dict[str, dict[str, Any]] = {
    "grpo": {"token_selection": "none"},
    "E": _ktr(["entropy"]),
    "V": _ktr(["visual"]),
    "T": _ktr(["temporal"]),
    "V+E+T": _ktr(SIGNALS),
    "V+E+T:r=0.1": _ktr(SIGNALS, ratio=0.1),
    "V+E+T:r=0.4": _ktr(SIGNALS, ratio=0.4),
    "V+E+T:soft": _ktr(SIGNALS, weighting="sigmoid"),
    # The adaptive ratio (``core.select_key_tokens_by_mass``, MASS_RULE): per signal and group,
    # the fewest top tokens holding half the score mass, between 5% and 50% of the group's tokens.
    "V+E+T:mass": {**_ktr(SIGNALS), **MASS_RULE},
    "E:mass": {**_ktr(["entropy"]), **MASS_RULE},
}
# The paper's arms, run when none are named; the others (beyond the paper) by name.
PAPER_ARMS = ("grpo", "E", "V", "T", "V+E+T", "V+E+T:r=0.1", "V+E+T:r=0.4", "V+E+T:soft")


# The noise-free held-out metrics of each run (``experiments.heldout``), paired against GRPO.
LOGPROB_UNITS = {
    "answer_logprob": "nats: log p(correct answer block | prompt, correct reasoning)",
    "key_logprob": "nats: log p(reasoning's last word + answer block | prompt, reasoning before it)",
}

# Points of each run at which the held-out log-probabilities are measured (every rl_steps / this).
HELDOUT_POINTS = 4

# --quick: the demo's world, policy and warm-up, with 48 prompts of RL per run (steps = 48 / the
# demo's prompts per step) and the first 100 test questions, so that all 8 arms x 3 seeds finish
# in under 30 minutes on a 2-core CPU (measured: see docs/ablation.md). Explicit --rl_steps /
# --eval_limit win over these.
QUICK_RL_PROMPTS = 48
QUICK_EVAL_LIMIT = 100


def quick_rl_steps(demo: DemoConfig) -> int:
    """RL steps of a --quick run: ``QUICK_RL_PROMPTS`` prompts in the demo's steps."""
    per_step = getattr(demo, "rl_prompts_per_step", None) or 1
    return max(1, math.ceil(QUICK_RL_PROMPTS / per_step))


@dataclass
class AblationConfig:
    """What to ablate and at which size.

    ``demo`` holds the world, policy, warm-up and RL hyper-parameters (the demo's defaults
    unless given); ``rl_steps`` and ``eval_limit`` default to the demo's (``quick``: to
    ``quick_rl_steps(demo)`` and ``QUICK_EVAL_LIMIT``). ``eval_limit`` None asks every test question.
    """

    output_dir: Path = Path(defaults.ABLATION_OUTPUT_DIR)
    seeds: tuple[int, ...] = defaults.ABLATION_SEEDS
    arms: tuple[str, ...] = PAPER_ARMS
    rl_steps: int | None = None
    eval_limit: int | None = None
    quick: bool = False
    demo: DemoConfig = field(default_factory=DemoConfig)
    progress: bool = True
    learning_rates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        self.arms = tuple(self.arms)
        self.seeds = tuple(self.seeds)
        unknown = [arm for arm in self.arms if arm not in ARMS]
        if unknown:
            raise AblationError(f"unknown arm(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(ARMS)}")
        if not self.arms:
            raise AblationError(f"no arms given; choose from: {', '.join(ARMS)}")
        if len(set(self.arms)) != len(self.arms) or len(set(self.seeds)) != len(self.seeds):
            raise AblationError(f"arms and seeds must not repeat (arms {list(self.arms)}, seeds {list(self.seeds)})")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise AblationError(f"seeds must be non-negative integers, at least one; got {list(self.seeds)}")
        self.learning_rates = tuple(self.learning_rates) or (self.demo.rl_learning_rate,)
        if any(isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0
               for lr in self.learning_rates) or len(set(self.learning_rates)) != len(self.learning_rates):
            raise AblationError(f"learning_rates must be distinct positive numbers; got {list(self.learning_rates)}")
        if self.rl_steps is None:
            self.rl_steps = quick_rl_steps(self.demo) if self.quick else self.demo.rl_steps
        if self.eval_limit is None:
            self.eval_limit = QUICK_EVAL_LIMIT if self.quick else self.demo.eval_limit
        if not isinstance(self.rl_steps, int) or self.rl_steps < 1:
            raise AblationError(f"rl_steps={self.rl_steps!r} must be a positive integer")
        if self.eval_limit is not None and (not isinstance(self.eval_limit, int) or self.eval_limit < 1):
            raise AblationError(f"eval_limit={self.eval_limit!r} must be a positive integer or None")

    def run_config(self) -> DemoConfig:
        """The demo configuration every run uses (its output_dir is not used for RL)."""
        return replace(self.demo, output_dir=self.output_dir, rl_steps=self.rl_steps, eval_limit=self.eval_limit,
                       progress=self.progress)

    def settings(self) -> dict[str, Any]:
        """What makes the rows of one output directory comparable (arms and seeds excluded)."""
        values = asdict(self.run_config())
        for key in ("output_dir", "progress", "attribution_limit"):
            values.pop(key)
        return {**values, "shared_overrides": SHARED_OVERRIDES}


# ---------------------------------------------------------------------------- arms


def arm_description(arm: str) -> dict[str, str]:
    """The table's method columns: E / V / T markers, ratio and weighting."""
    overrides = ARMS[arm]
    if overrides.get("token_selection") == "none":
        return {"E": "", "V": "", "T": "", "ratio": "-", "weighting": "-"}
    signals = set(overrides.get("ktr_signals", SIGNALS))
    marks = {letter: ("x" if name in signals else "") for name, letter in SIGNAL_LETTERS.items()}
    ratio = (f"mass {overrides['ktr_mass']}" if overrides.get("ktr_ratio_rule") == "mass"
             else str(overrides.get("ktr_ratio", 0.2)))
    return {**marks, "ratio": ratio, "weighting": overrides.get("ktr_weighting", "hard")}


def _slug(arm: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", arm).strip("_")


# ---------------------------------------------------------------------------- results


def run_learning_rate(config: AblationConfig, row: dict[str, Any]) -> float:
    """A row's RL learning rate (rows written before the grid existed used the demo's)."""
    return float(row.get("learning_rate", config.demo.rl_learning_rate))


def pending_runs(config: AblationConfig, rows: list[dict[str, Any]]) -> list[tuple[str, float, int]]:
    """(arm, learning rate, seed) runs not yet in ``rows``, seed-major: every arm and rate of
    seed 0 first."""
    done = {(row["arm"], run_learning_rate(config, row), row["seed"]) for row in rows}
    return [(arm, lr, seed) for seed in config.seeds for arm in config.arms for lr in config.learning_rates
            if (arm, float(lr), seed) not in done]


def best_learning_rates(config: AblationConfig, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each arm's learning rate of the grid with the highest mean overall accuracy over the
    configured seeds (ties: the smaller rate). It is chosen on the test questions the table
    reports, which flatters every arm alike; with one rate there is nothing to choose."""
    best = {}
    for arm in config.arms:
        means = []
        for lr in sorted(config.learning_rates):
            values = [float(r["overall"]) for r in rows if r["arm"] == arm and run_learning_rate(config, r) == lr
                      and r["seed"] in config.seeds]
            if values:
                means.append((-(sum(values) / len(values)), lr))
        if means:
            best[arm] = min(means)[1]
    return best


def aggregate(rows: list[dict[str, Any]], arms: list[str] | tuple[str, ...],
              seeds: list[int] | tuple[int, ...] | None = None) -> list[dict[str, Any]]:
    """Per arm (in ``arms`` order, arms without rows left out): the seeds it has and the mean
    and std over them of each kind's accuracy (``overall_mean``, ``overall_std``, ...)."""
    summary = []
    for arm in arms:
        runs = [row for row in rows if row["arm"] == arm and (seeds is None or row["seed"] in seeds)]
        if not runs:
            continue
        entry: dict[str, Any] = {"arm": arm, **arm_description(arm), "seeds": sorted(row["seed"] for row in runs)}
        for kind in KINDS:
            if all(kind in row for row in runs):
                entry[f"{kind}_mean"], entry[f"{kind}_std"] = mean_std([float(row[kind]) for row in runs])
        summary.append(entry)
    return summary


# ---------------------------------------------------------------------------- running


@contextlib.contextmanager
def _quiet_hub_bars():
    """transformers' own "Loading weights" / "Writing model shards" bars, off for a while."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _accuracies(summary) -> dict[str, float]:
    values = accuracy_by_kind(summary)
    return {kind: float(values[kind]) for kind in KINDS if kind in values}  # kinds the test split asks


def _warm_up(config: AblationConfig, world_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """Build and warm up the demo's policy once, evaluate it, save it; reuse a finished one."""
    meta_path = checkpoint / "warmup.json"
    if meta_path.exists():
        print(f"\n== warm-up checkpoint: reusing {checkpoint}", flush=True)
        return json.loads(meta_path.read_text())
    demo = config.run_config()
    print("\n== build the demo's policy and warm it up once (as the demo does)", flush=True)
    start = time.perf_counter()
    policy = prepare_policy(demo, world_split(world_dir, "train", demo), eval_set=world_split(world_dir, "test", demo))
    model, processor = policy.model, policy.processor
    warmup_seconds = time.perf_counter() - start
    print(f"   done in {warmup_seconds:.1f} s\n\n== evaluate the warm-up checkpoint", flush=True)
    predictions = config.output_dir / "eval_warmup.jsonl"
    predictions.unlink(missing_ok=True)  # left by an interrupted run with another model
    start = time.perf_counter()
    before = run_evaluation(model, processor, "synthetic", world_dir, predictions, **evaluation_settings(demo))
    eval_seconds = time.perf_counter() - start
    print(before.format_table())
    print(f"   done in {eval_seconds:.1f} s", flush=True)
    checkpoint.mkdir(parents=True, exist_ok=True)
    with _quiet_hub_bars():
        model.save_pretrained(checkpoint)
        processor.save_pretrained(checkpoint)
    heldout = heldout_logprobs(model, processor, world_split(world_dir, "test", demo), limit=demo.eval_limit)
    meta = {"before": _accuracies(before), "eval_questions": before.count, "heldout_before": heldout,
            "warmup_loss": {"first": policy.warmup.losses[0], "last": policy.warmup.losses[-1]},
            "encoder_labels": policy.encoder_figures(),
            "first_appearance": policy.first_colour_figures(),
            "seconds": {"warmup": warmup_seconds, "eval": eval_seconds}}
    meta_path.write_text(json.dumps(meta, indent=2))  # written last: marks the checkpoint complete
    return meta


def _run_one(config: AblationConfig, arm: str, learning_rate: float, seed: int, world_dir: Path,
             checkpoint: Path) -> dict[str, Any]:
    """Load the warm-up checkpoint, RL with the arm's settings, this rate and seed, evaluate."""
    demo = replace(config.run_config(), rl_learning_rate=learning_rate)
    rate = f"-lr{learning_rate:g}" if len(config.learning_rates) > 1 else ""
    run_dir = config.output_dir / "runs" / f"{_slug(arm)}{rate}-seed{seed}"
    if run_dir.exists():  # an interrupted run: its RL is redone, so its predictions are stale
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    with _quiet_hub_bars():
        model, processor = load_local_model(checkpoint)
    train_set = world_split(world_dir, "train", demo)
    test_set = world_split(world_dir, "test", demo)
    curve = HeldoutCurve(model, processor, test_set, every=max(config.rl_steps // HELDOUT_POINTS, 1),
                         limit=demo.eval_limit)
    start = time.perf_counter()
    rl_logs = train_rl(model, processor, train_set, demo, overrides=ARMS[arm], seed=seed,
                       output_dir=run_dir / "rl", label=f"{arm} seed {seed}", leave=False, callbacks=[curve])
    rl_seconds = time.perf_counter() - start
    start = time.perf_counter()
    after = run_evaluation(model, processor, "synthetic", world_dir, run_dir / "eval.jsonl",
                           **evaluation_settings(demo, progress=False))
    heldout = curve.curve[-1] if curve.curve else heldout_logprobs(model, processor, test_set, limit=demo.eval_limit)
    eval_seconds = time.perf_counter() - start
    window = max(min(10, len(rl_logs) // 2), 1)
    rewards = [entry["reward"] for entry in rl_logs]
    selected = [entry.get("selected_fraction/union", 1.0) for entry in rl_logs]
    # The share of each step's update the mask drops, and each signal's (core.gradient_share).
    share_names = sorted({name for entry in rl_logs for name in entry if name.startswith("grad_share/")})
    grad_shares = {name.split("/", 1)[1]: sum(e[name] for e in rl_logs if name in e) / sum(name in e for e in rl_logs)
                   for name in share_names}
    return {
        "arm": arm, "seed": seed, "learning_rate": learning_rate, **_accuracies(after), "eval_questions": after.count, "rl_steps": len(rl_logs),
        "reward_first": sum(rewards[:window]) / window if rewards else math.nan,
        "reward_last": sum(rewards[-window:]) / window if rewards else math.nan,
        "selected_fraction": sum(selected) / len(selected) if selected else math.nan, "grad_shares": grad_shares,
        "answer_logprob": heldout["answer"], "key_logprob": heldout["key"], "trace_logprob": heldout["trace"],
        "heldout_curve": curve.curve,
        "rl_seconds": round(rl_seconds, 2), "eval_seconds": round(eval_seconds, 2), "overrides": ARMS[arm],
    }


def run_ablation(config: AblationConfig, json_path: str | Path | None = None) -> dict[str, Any]:
    """Run (or resume) every pending (arm, seed), then aggregate; returns the summary that
    ``ablation.json`` holds."""
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=UserWarning)
    started = time.perf_counter()
    check_settings(out / "settings.json", config.settings())
    demo = config.run_config()
    world_dir = out / "world"
    print(f"\n== synthesize the demo's video world ({demo.num_rows} clips, task {demo.task})", flush=True)
    start = time.perf_counter()
    generate_dataset(world_dir, demo.num_rows, demo.seed, test_fraction=demo.test_fraction, fps=demo.video_fps,
                     task=demo.task, progress=config.progress)
    print(f"   done in {time.perf_counter() - start:.1f} s", flush=True)
    checkpoint = out / "warmup"
    meta = _warm_up(config, world_dir, checkpoint)

    results = out / "runs.jsonl"
    rows = read_rows(results)
    todo = pending_runs(config, rows)
    total = len(config.arms) * len(config.seeds) * len(config.learning_rates)
    rates = f" x {len(config.learning_rates)} learning rates" if len(config.learning_rates) > 1 else ""
    print(f"\n== RL from the warm-up checkpoint: {total} runs ({len(config.arms)} arms x {len(config.seeds)} seeds"
          f"{rates}, {config.rl_steps} steps each), {total - len(todo)} already in {results}", flush=True)
    bar = None
    if config.progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=total - len(todo), desc="ablation", unit="run", dynamic_ncols=True)
    try:
        for arm, learning_rate, seed in todo:
            if bar is not None:
                bar.set_description(f"ablation [{arm} seed {seed}]")
            row = _run_one(config, arm, learning_rate, seed, world_dir, checkpoint)
            append_row(results, row)
            rows.append(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"last: {arm} seed {seed} {100 * row['overall']:.1f}%")
            else:
                print(f"   {arm} seed {seed}: accuracy {100 * row['overall']:.1f}% "
                      f"({row['rl_seconds']:.0f} s RL, {row['eval_seconds']:.0f} s eval)", flush=True)
    finally:
        if bar is not None:
            bar.close()

    return _report(config, rows, meta, started, json_path)


def _report(config: AblationConfig, rows: list[dict[str, Any]], meta: dict[str, Any], started: float,
            json_path: str | Path | None) -> dict[str, Any]:
    """Aggregate the rows of the configured arms and seeds; print the table and write the CSV
    files, the plot and ``ablation.json``."""
    out, demo = config.output_dir, config.run_config()
    best = best_learning_rates(config, rows)
    wanted = [row for row in rows if row["arm"] in config.arms and row["seed"] in config.seeds
              and run_learning_rate(config, row) == best.get(row["arm"])]
    wanted.sort(key=lambda row: (config.arms.index(row["arm"]), config.seeds.index(row["seed"])))
    summary = aggregate(wanted, config.arms, config.seeds)
    before = meta["before"]
    per_step = getattr(demo, "rl_prompts_per_step", None) or 1
    steps = f"{config.rl_steps} RL steps" + (f" of {per_step} prompts" if per_step > 1 else "")
    title = (f"videoktr ablate: test accuracy (%), mean ± std over seeds {', '.join(map(str, config.seeds))}; "
             f"{steps} per run, {meta['eval_questions']} test questions")
    runs_csv, summary_csv = write_csvs(out, wanted, summary, before)
    paired = paired_differences(wanted, config.arms) if "grpo" in config.arms else []
    paired_logprobs = {kind: paired_differences(wanted, config.arms, kind=kind) for kind in LOGPROB_UNITS
                       if "grpo" in config.arms and all(kind in row for row in wanted)}
    plot = write_plot(out / "ablation.png", summary, before,
                      title=f"Ablations: {steps}, {len(config.seeds)} seeds, mean ± std")
    result = {
        "settings": config.settings(), "arms": {arm: ARMS[arm] for arm in config.arms}, "seeds": list(config.seeds),
        "before": before, "warmup": meta, "summary": summary, "runs": wanted, "paired": paired,
        **{f"paired_{kind}": paired_logprobs.get(kind, []) for kind in LOGPROB_UNITS},
        "learning_rates": list(config.learning_rates),
        "best_learning_rates": best, "all_runs": [row for row in rows if row["arm"] in config.arms],
        "seconds_this_call": time.perf_counter() - started,
    }
    (out / "ablation.json").write_text(json.dumps(result, indent=2))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2))
    print("\n" + format_table(summary, before, title))
    if paired:
        print("\n" + format_paired_table(paired))
    if len(config.learning_rates) > 1:
        print("\nlearning rate per arm (the best of " + ", ".join(f"{lr:g}" for lr in config.learning_rates)
              + " by mean overall accuracy): " + ", ".join(f"{arm} {lr:g}" for arm, lr in best.items()))
    for kind, differences in paired_logprobs.items():
        print("\n" + format_paired_table(differences, unit=LOGPROB_UNITS[kind]))
    print(f"\nper run: {runs_csv}\nsummary: {summary_csv}\nplot: {plot}\njson: {out / 'ablation.json'}"
          f"\nruns: {out / 'runs.jsonl'} (rerun the same command to resume)")
    return result
