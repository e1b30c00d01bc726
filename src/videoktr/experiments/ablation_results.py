"""The results of ``videoktr ablate``: the resumable rows file, the mean ± std per arm, and the
table, CSV files and plot they are reported in."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from ..analysis.plots import grouped_bar_chart

__all__ = ["BEFORE_ARM", "KINDS", "AblationError", "append_row", "asked_kinds", "check_settings", "format_paired_table",
           "format_table", "mean_std", "paired_differences", "read_rows", "t_quantile_975", "write_csvs",
           "write_plot"]

KINDS = ("overall", "visual", "temporal", "both")
BEFORE_ARM = "warm-up (no RL)"


class AblationError(ValueError):
    """A bad arm or seed list, or an output directory made with other settings."""


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


def append_row(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def check_settings(path: Path, settings: dict[str, Any]) -> None:
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


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the std of a single value is 0."""
    mean = sum(values) / len(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


# Student's t 0.975 quantiles by degrees of freedom (standard tables, 3 decimals): a 95% interval
# needs only these, and scipy is not a dependency for one number.
_T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
          10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101,
          19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052,
          28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t_quantile_975(degrees_of_freedom: int) -> float:
    """Student's t 0.975 quantile (a two-sided 95% interval); between tabled values the next
    smaller tabled degrees of freedom (a slightly wider interval); 1.960 beyond 120."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom must be >= 1, got {degrees_of_freedom}")
    if degrees_of_freedom > 120:
        return 1.960
    return _T_975[max(df for df in _T_975 if df <= degrees_of_freedom)]


def paired_differences(rows: list[dict[str, Any]], arms: list[str] | tuple[str, ...], baseline: str = "grpo",
                       kind: str = "overall") -> list[dict[str, Any]]:
    """Each arm against ``baseline``, paired by seed: with ``d_s = acc(arm, s) - acc(baseline, s)``
    over the seeds both ran, ``mean d``, the 95% t-interval ``mean d ± t_{0.975, n-1} sd(d) / sqrt(n)``
    (None for fewer than 2 seeds), and the seeds where the arm is ahead, level and behind.
    Pairing removes what a seed does to every arm alike (its prompts, its first rollouts), so
    the interval is the one that can resolve a difference between arms."""
    by_seed = {arm: {row["seed"]: float(row[kind]) for row in rows if row["arm"] == arm} for arm in arms}
    if baseline not in by_seed or not by_seed[baseline]:
        return []
    out = []
    for arm in arms:
        if arm == baseline:
            continue
        seeds = sorted(set(by_seed[arm]) & set(by_seed[baseline]))
        if not seeds:
            continue
        differences = [by_seed[arm][seed] - by_seed[baseline][seed] for seed in seeds]
        mean = sum(differences) / len(differences)
        low = high = None
        if len(differences) > 1:
            half = t_quantile_975(len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
            low, high = mean - half, mean + half
        out.append({"arm": arm, "baseline": baseline, "kind": kind, "seeds": seeds, "mean_difference": mean,
                    "ci95_low": low, "ci95_high": high, "ahead": sum(d > 0 for d in differences),
                    "level": sum(d == 0 for d in differences), "behind": sum(d < 0 for d in differences)})
    return out


def format_paired_table(differences: list[dict[str, Any]], unit: str = "accuracy, points") -> str:
    """One line per arm: the mean paired difference from the baseline (accuracy in points, or
    with ``unit="nats"`` a log-probability as it is), its 95% interval, and the seeds ahead /
    level / behind."""
    if not differences:
        return ""
    first = differences[0]
    scale, digits = (100.0, 1) if unit.startswith("accuracy") else (1.0, 3)
    header = f"{'arm':<16}{'seeds':>6}{'mean diff':>11}{'95% interval':>22}{'ahead/level/behind':>21}"
    lines = [f"paired by seed against {first['baseline']} ({first['kind']}, {unit})", header, "-" * len(header)]
    for entry in differences:
        interval = ("-" if entry["ci95_low"] is None
                    else f"[{scale * entry['ci95_low']:+.{digits}f}, {scale * entry['ci95_high']:+.{digits}f}]")
        counts = f"{entry['ahead']}/{entry['level']}/{entry['behind']}"
        lines.append(f"{entry['arm']:<16}{len(entry['seeds']):>6}{scale * entry['mean_difference']:>+11.{digits}f}"
                     f"{interval:>22}{counts:>21}")
    return "\n".join(lines)


def _cell(mean: float, std: float | None) -> str:
    return f"{100 * mean:.1f}" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f}"


def asked_kinds(summary: list[dict[str, Any]], before: dict[str, float] | None = None) -> list[str]:
    """The question kinds of ``KINDS`` that every arm (and the warm-up row) has a figure for: a
    filler task asks only visual questions."""
    return [kind for kind in KINDS if all(f"{kind}_mean" in entry for entry in summary)
            and (before is None or kind in before)]


def format_table(summary: list[dict[str, Any]], before: dict[str, float] | None = None, title: str = "") -> str:
    """Rows: the warm-up checkpoint, then the arms; columns: the method (E V T, ratio,
    weighting), the number of seeds, and test accuracy (%) mean ± std per question kind asked."""
    kinds = asked_kinds(summary, before)
    header = f"{'arm':<16}{'E':>2}{'V':>2}{'T':>2}{'ratio':>10}  {'weighting':<10}{'seeds':>5}" + "".join(
        f"{kind:>14}" for kind in kinds
    )
    lines = [title, "", header, "-" * len(header)] if title else [header, "-" * len(header)]
    if before is not None:
        lines.append(f"{BEFORE_ARM:<16}{'':>6}{'':>10}  {'':<10}{'-':>5}"
                     + "".join(f"{_cell(before[kind], None):>14}" for kind in kinds))
    for entry in summary:
        lines.append(
            f"{entry['arm']:<16}{entry['E'] or '-':>2}{entry['V'] or '-':>2}{entry['T'] or '-':>2}{entry['ratio']:>10}  "
            f"{entry['weighting']:<10}{len(entry['seeds']):>5}"
            + "".join(f"{_cell(entry[f'{kind}_mean'], entry[f'{kind}_std']):>14}" for kind in kinds)
        )
    return "\n".join(lines)


RUN_COLUMNS = ("arm", "seed", *KINDS, "eval_questions", "rl_steps", "reward_first", "reward_last",
               "selected_fraction", "answer_logprob", "key_logprob", "trace_logprob", "rl_seconds", "eval_seconds")
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
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS, restval="")
        writer.writeheader()
        if before is not None:
            writer.writerow({"arm": BEFORE_ARM, "n_seeds": 0, "seeds": "",
                             **{f"{k}_mean": before[k] for k in KINDS if k in before}, **{f"{k}_std": "" for k in KINDS}})
        for entry in summary:
            writer.writerow({**{k: v for k, v in entry.items() if k != "seeds"}, "n_seeds": len(entry["seeds"]),
                             "seeds": " ".join(map(str, entry["seeds"]))})
    return runs_path, summary_path


def write_plot(path: Path, summary: list[dict[str, Any]], before: dict[str, float] | None = None,
               title: str = "") -> Path:
    """Grouped bars: one group per arm (the warm-up checkpoint first), one bar per question
    kind, error bars one std over seeds."""
    kinds = asked_kinds(summary, before)
    groups = ([(BEFORE_ARM.replace(" (", "\n("), {k: before[k] for k in kinds}, {k: math.nan for k in kinds})]
              if before is not None else [])
    groups += [(entry["arm"], {k: entry[f"{k}_mean"] for k in kinds}, {k: entry[f"{k}_std"] for k in kinds})
               for entry in summary]
    return grouped_bar_chart(
        path, [name for name, _, _ in groups],
        {kind: [100 * means[kind] for _, means, _ in groups] for kind in kinds}, "test accuracy (%)",
        title or "Ablations: mean ± std over seeds",
        errors={kind: [100 * stds[kind] for _, _, stds in groups] for kind in kinds}, room_for_legend=True,
    )
