"""``videoktr ablate``: the paper's ablations on the synthetic world, from one warm-up checkpoint.

    synthesize the demo's world -> build the demo's policy -> warm up once -> evaluate ("before")
    -> save the checkpoint -> for each seed, for each arm: load the checkpoint, RL with the arm's
    trainer settings, evaluate, append a row to runs.jsonl -> mean ± std per arm -> table, CSV, plot

The arms (``ARMS``) are trainer configuration overrides on top of the demo's ``video_ktr``
run: vanilla GRPO, each signal alone, the V+E+T union at ratios 0.1 / 0.2 / 0.4, and the union
with soft (sigmoid) weights instead of the hard mask. Everything but the arm's keys and the RL
seed is the same in every run: the world, the warm-up checkpoint, the RL hyper-parameters and
the evaluation (greedy, the demo's settings).

An interrupted ablation resumes: ``settings.json`` pins the sizes of the output directory, the
warm-up checkpoint is reused once written, and ``(arm, seed)`` pairs already in ``runs.jsonl``
are skipped. Arms and seeds can be added to a finished directory later.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import shutil
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .demo import DemoConfig, evaluation_kwargs

KINDS = ("overall", "visual", "temporal", "both")
SIGNAL_LETTERS = {"entropy": "E", "visual": "V", "temporal": "T"}
ALL_SIGNALS = ["visual", "temporal", "entropy"]
BEFORE_ARM = "warm-up (no RL)"


def _ktr(signals: list[str], ratio: str = "0.2", weighting: str = "hard") -> dict[str, Any]:
    return {"token_selection": "ktr", "ktr_signals": list(signals), "ktr_ratio": ratio, "ktr_weighting": weighting}


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
    "V+E+T": _ktr(ALL_SIGNALS),
    "V+E+T:r=0.1": _ktr(ALL_SIGNALS, ratio="0.1"),
    "V+E+T:r=0.4": _ktr(ALL_SIGNALS, ratio="0.4"),
    "V+E+T:soft": _ktr(ALL_SIGNALS, weighting="sigmoid"),
}

# --quick: the demo's world, policy and warm-up, with 48 prompts of RL per run (steps = 48 / the
# demo's prompts per step) and the first 100 test questions, so that all 8 arms x 3 seeds finish
# in under 30 minutes on a 2-core CPU (measured: see the README). Explicit --rl-steps /
# --eval-limit win over these.
QUICK_RL_PROMPTS = 48
QUICK_EVAL_LIMIT = 100


def quick_rl_steps(demo: DemoConfig) -> int:
    """RL steps of a --quick run: ``QUICK_RL_PROMPTS`` prompts in the demo's steps."""
    per_step = getattr(demo, "rl_prompts_per_step", None) or 1
    return max(1, math.ceil(QUICK_RL_PROMPTS / per_step))


class AblationError(ValueError):
    """A bad arm or seed list, or an output directory made with other settings."""


@dataclass
class AblationConfig:
    """What to ablate and at which size.

    ``demo`` holds the world, policy, warm-up and RL hyper-parameters (the demo's defaults
    unless given); ``rl_steps`` and ``eval_limit`` default to the demo's (``quick``: to
    ``quick_rl_steps(demo)`` and ``QUICK_EVAL_LIMIT``). ``eval_limit`` None asks every test question.
    """

    output_dir: Path = Path("ablation_output")
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = tuple(ARMS)
    rl_steps: int | None = None
    eval_limit: int | None = None
    quick: bool = False
    demo: DemoConfig = field(default_factory=DemoConfig)
    progress: bool = True

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
        return values


# ---------------------------------------------------------------------------- arms


def arm_description(arm: str) -> dict[str, str]:
    """The table's method columns: E / V / T markers, ratio and weighting."""
    overrides = ARMS[arm]
    if overrides.get("token_selection") == "none":
        return {"E": "", "V": "", "T": "", "ratio": "-", "weighting": "-"}
    signals = set(overrides.get("ktr_signals", ALL_SIGNALS))
    marks = {letter: ("x" if name in signals else "") for name, letter in SIGNAL_LETTERS.items()}
    return {**marks, "ratio": str(overrides.get("ktr_ratio", "0.2")), "weighting": overrides.get("ktr_weighting", "hard")}


def _slug(arm: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", arm).strip("_")


# ---------------------------------------------------------------------------- results file


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of ``runs.jsonl``; a cut-off last line (a killed write) is dropped and removed."""
    if not path.exists():
        return []
    rows, good_end, offset = [], 0, 0
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        end = offset + len(raw) + (0 if number == len(lines) else 1)
        if raw.strip():
            try:
                rows.append(json.loads(raw))
            except json.JSONDecodeError as error:
                if number == len(lines):
                    break
                raise AblationError(f"{path} line {number}: invalid JSON ({error})") from error
        good_end = offset = end
    if good_end < len(data):
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    return rows


def _append_row(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def pending_runs(config: AblationConfig, rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(arm, seed) pairs not yet in ``rows``, seed-major: every arm of seed 0 first."""
    done = {(row["arm"], row["seed"]) for row in rows}
    return [(arm, seed) for seed in config.seeds for arm in config.arms if (arm, seed) not in done]


def _check_settings(path: Path, settings: dict[str, Any]) -> None:
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != settings:
            changed = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
            raise AblationError(
                f"{path.parent} holds an ablation made with other settings ({', '.join(changed)} differ: "
                f"{ {k: stored.get(k) for k in changed} } there, { {k: settings.get(k) for k in changed} } now); "
                "use another --out, or delete that directory to start over"
            )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2))


# ---------------------------------------------------------------------------- aggregation


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the std of a single value is 0."""
    mean = sum(values) / len(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


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
            entry[f"{kind}_mean"], entry[f"{kind}_std"] = _mean_std([float(row[kind]) for row in runs])
        summary.append(entry)
    return summary


def _cell(mean: float, std: float | None) -> str:
    return f"{100 * mean:.1f}" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f}"


def format_table(summary: list[dict[str, Any]], before: dict[str, float] | None = None, title: str = "") -> str:
    """Rows: the warm-up checkpoint, then the arms; columns: the method (E V T, ratio,
    weighting), the number of seeds, and test accuracy (%) mean ± std per question kind."""
    header = f"{'arm':<16}{'E':>2}{'V':>2}{'T':>2}{'ratio':>7}  {'weighting':<10}{'seeds':>5}" + "".join(
        f"{kind:>14}" for kind in KINDS
    )
    lines = [title, "", header, "-" * len(header)] if title else [header, "-" * len(header)]
    if before is not None:
        lines.append(f"{BEFORE_ARM:<16}{'':>6}{'':>7}  {'':<10}{'-':>5}"
                     + "".join(f"{_cell(before[kind], None):>14}" for kind in KINDS))
    for entry in summary:
        lines.append(
            f"{entry['arm']:<16}{entry['E'] or '-':>2}{entry['V'] or '-':>2}{entry['T'] or '-':>2}{entry['ratio']:>7}  "
            f"{entry['weighting']:<10}{len(entry['seeds']):>5}"
            + "".join(f"{_cell(entry[f'{kind}_mean'], entry[f'{kind}_std']):>14}" for kind in KINDS)
        )
    return "\n".join(lines)


RUN_COLUMNS = ("arm", "seed", *KINDS, "eval_questions", "rl_steps", "reward_first", "reward_last",
               "selected_fraction", "rl_seconds", "eval_seconds")
SUMMARY_COLUMNS = ("arm", "E", "V", "T", "ratio", "weighting", "n_seeds", "seeds",
                   *(f"{kind}_{stat}" for kind in KINDS for stat in ("mean", "std")))


def write_csvs(directory: Path, rows: list[dict[str, Any]], summary: list[dict[str, Any]],
               before: dict[str, float] | None = None) -> tuple[Path, Path]:
    """``ablation.csv`` (one row per arm x seed) and ``ablation_summary.csv`` (mean and std per
    arm, the warm-up checkpoint first with an empty std)."""
    runs_path, summary_path = directory / "ablation.csv", directory / "ablation_summary.csv"
    with runs_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RUN_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    with summary_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        if before is not None:
            writer.writerow({"arm": BEFORE_ARM, "n_seeds": 0, "seeds": "",
                             **{f"{k}_mean": before[k] for k in KINDS}, **{f"{k}_std": "" for k in KINDS}})
        for entry in summary:
            writer.writerow({**{k: v for k, v in entry.items() if k != "seeds"}, "n_seeds": len(entry["seeds"]),
                             "seeds": " ".join(map(str, entry["seeds"]))})
    return runs_path, summary_path


def write_plot(path: Path, summary: list[dict[str, Any]], before: dict[str, float] | None = None,
               title: str = "") -> Path:
    """Grouped bars: one group per arm (the warm-up checkpoint first), one bar per question
    kind, error bars one std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ([(BEFORE_ARM.replace(" (", "\n("), {k: before[k] for k in KINDS}, {k: math.nan for k in KINDS})]
              if before is not None else [])
    groups += [(entry["arm"], {k: entry[f"{k}_mean"] for k in KINDS}, {k: entry[f"{k}_std"] for k in KINDS})
               for entry in summary]
    width = 0.8 / len(KINDS)
    figure, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) + 1.5), 3.8))
    for index, kind in enumerate(KINDS):
        positions = [g + (index - (len(KINDS) - 1) / 2) * width for g in range(len(groups))]
        axis.bar(positions, [100 * means[kind] for _, means, _ in groups], width,
                 yerr=[100 * stds[kind] for _, _, stds in groups], capsize=2, label=kind)
    axis.set_xticks(range(len(groups)), [name for name, _, _ in groups], fontsize=8)
    tops = [100 * (means[k] + (0.0 if math.isnan(stds[k]) else stds[k])) for _, means, stds in groups for k in KINDS]
    axis.set_ylim(0, max(max(tops, default=0.0) * 1.2, 1.0))  # room for the legend
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(title or "Ablations: mean ± std over seeds", fontsize=10)
    axis.legend(fontsize=8, ncol=len(KINDS))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


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
    from .demo import _accuracy_by_kind

    values = _accuracy_by_kind(summary)
    return {kind: float(values.get(kind, 0.0)) for kind in KINDS}


def _warm_up(config: AblationConfig, world_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """Build and warm up the demo's policy once, evaluate it, save it; reuse a finished one."""
    meta_path = checkpoint / "warmup.json"
    if meta_path.exists():
        print(f"\n== warm-up checkpoint: reusing {checkpoint}", flush=True)
        return json.loads(meta_path.read_text())
    from .data.dataset import VideoR1Dataset
    from .demo import encoder_label_figures, order_figures, prepare_policy
    from .eval.runner import run_evaluation

    demo = config.run_config()
    print("\n== build the demo's policy and warm it up once (as the demo does)", flush=True)
    start = time.perf_counter()
    train_set = VideoR1Dataset(world_dir / "train.jsonl", fps=demo.video_fps, min_frames=4, max_frames=16)
    test_set = VideoR1Dataset(world_dir / "test.jsonl", fps=demo.video_fps, min_frames=4, max_frames=16)
    policy = prepare_policy(demo, train_set, eval_set=test_set)
    model, processor = policy.model, policy.processor
    warmup_seconds = time.perf_counter() - start
    print(f"   done in {warmup_seconds:.1f} s\n\n== evaluate the warm-up checkpoint", flush=True)
    predictions = config.output_dir / "eval_warmup.jsonl"
    predictions.unlink(missing_ok=True)  # left by an interrupted run with another model
    start = time.perf_counter()
    before = run_evaluation(model, processor, "synthetic", world_dir, predictions, **evaluation_kwargs(demo))
    eval_seconds = time.perf_counter() - start
    print(before.format_table())
    print(f"   done in {eval_seconds:.1f} s", flush=True)
    checkpoint.mkdir(parents=True, exist_ok=True)
    with _quiet_hub_bars():
        model.save_pretrained(checkpoint)
        processor.save_pretrained(checkpoint)
    meta = {"before": _accuracies(before), "eval_questions": before.count,
            "warmup_loss": {"first": policy.warmup.losses[0], "last": policy.warmup.losses[-1]},
            "encoder_labels": encoder_label_figures(policy.encoder),
            "first_appearance": order_figures(policy),
            "seconds": {"warmup": warmup_seconds, "eval": eval_seconds}}
    meta_path.write_text(json.dumps(meta, indent=2))  # written last: marks the checkpoint complete
    return meta


def _run_one(config: AblationConfig, arm: str, seed: int, world_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """Load the warm-up checkpoint, RL with the arm's settings and this seed, evaluate."""
    from .data.dataset import VideoR1Dataset
    from .demo import _train
    from .eval.runner import run_evaluation
    from .models import load_local_model

    demo = config.run_config()
    run_dir = config.output_dir / "runs" / f"{_slug(arm)}-seed{seed}"
    if run_dir.exists():  # an interrupted run: its RL is redone, so its predictions are stale
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    with _quiet_hub_bars():
        model, processor = load_local_model(checkpoint)
    train_set = VideoR1Dataset(world_dir / "train.jsonl", fps=demo.video_fps, min_frames=4, max_frames=16)
    start = time.perf_counter()
    rl_logs = _train(model, processor, train_set, demo, overrides=ARMS[arm], seed=seed, output_dir=run_dir / "rl",
                     label=f"{arm} seed {seed}", leave=False)
    rl_seconds = time.perf_counter() - start
    start = time.perf_counter()
    after = run_evaluation(model, processor, "synthetic", world_dir, run_dir / "eval.jsonl",
                           **evaluation_kwargs(demo, progress=False))
    eval_seconds = time.perf_counter() - start
    window = max(min(10, len(rl_logs) // 2), 1)
    rewards = [entry["reward"] for entry in rl_logs]
    selected = [entry.get("selected_fraction/union", 1.0) for entry in rl_logs]
    return {
        "arm": arm, "seed": seed, **_accuracies(after), "eval_questions": after.count, "rl_steps": len(rl_logs),
        "reward_first": sum(rewards[:window]) / window if rewards else math.nan,
        "reward_last": sum(rewards[-window:]) / window if rewards else math.nan,
        "selected_fraction": sum(selected) / len(selected) if selected else math.nan,
        "rl_seconds": round(rl_seconds, 2), "eval_seconds": round(eval_seconds, 2), "overrides": ARMS[arm],
    }


def run_ablation(config: AblationConfig, json_path: str | Path | None = None) -> dict[str, Any]:
    """Run (or resume) every pending (arm, seed), then aggregate; returns the summary that
    ``ablation.json`` holds."""
    from .synthetic import generate_dataset

    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=UserWarning)
    started = time.perf_counter()
    _check_settings(out / "settings.json", config.settings())
    demo = config.run_config()
    world_dir = out / "world"
    print(f"\n== synthesize the demo's video world ({demo.num_rows} clips)", flush=True)
    start = time.perf_counter()
    generate_dataset(world_dir, demo.num_rows, demo.seed, test_fraction=demo.test_fraction, fps=demo.video_fps,
                     progress=config.progress)
    print(f"   done in {time.perf_counter() - start:.1f} s", flush=True)
    checkpoint = out / "warmup"
    meta = _warm_up(config, world_dir, checkpoint)

    results = out / "runs.jsonl"
    rows = read_rows(results)
    todo = pending_runs(config, rows)
    total = len(config.arms) * len(config.seeds)
    print(f"\n== RL from the warm-up checkpoint: {total} runs ({len(config.arms)} arms x {len(config.seeds)} seeds, "
          f"{config.rl_steps} steps each), {total - len(todo)} already in {results}", flush=True)
    bar = None
    if config.progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=total - len(todo), desc="ablation", unit="run", dynamic_ncols=True)
    try:
        for arm, seed in todo:
            if bar is not None:
                bar.set_description(f"ablation [{arm} seed {seed}]")
            row = _run_one(config, arm, seed, world_dir, checkpoint)
            _append_row(results, row)
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

    wanted = [row for row in rows if row["arm"] in config.arms and row["seed"] in config.seeds]
    wanted.sort(key=lambda row: (config.arms.index(row["arm"]), config.seeds.index(row["seed"])))
    summary = aggregate(wanted, config.arms, config.seeds)
    before = meta["before"]
    per_step = getattr(demo, "rl_prompts_per_step", None) or 1
    steps = f"{config.rl_steps} RL steps" + (f" of {per_step} prompts" if per_step > 1 else "")
    title = (f"videoktr ablate: test accuracy (%), mean ± std over seeds {', '.join(map(str, config.seeds))}; "
             f"{steps} per run, {meta['eval_questions']} test questions")
    runs_csv, summary_csv = write_csvs(out, wanted, summary, before)
    plot = write_plot(out / "ablation.png", summary, before,
                      title=f"Ablations: {steps}, {len(config.seeds)} seeds, mean ± std")
    result = {
        "settings": config.settings(), "arms": {arm: ARMS[arm] for arm in config.arms}, "seeds": list(config.seeds),
        "before": before, "warmup": meta, "summary": summary, "runs": wanted,
        "seconds_this_call": time.perf_counter() - started,
    }
    (out / "ablation.json").write_text(json.dumps(result, indent=2))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2))
    print("\n" + format_table(summary, before, title))
    print(f"\nper run: {runs_csv}\nsummary: {summary_csv}\nplot: {plot}\njson: {out / 'ablation.json'}"
          f"\nruns: {results} (rerun the same command to resume)")
    return result
