"""PNG charts for the reports (``videoktr demo``, ``videoktr ablate``): matplotlib without a
display, one function per kind of chart, each writing one file and returning its path."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["grouped_bar_chart", "line_chart"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def line_chart(path: str | Path, x: Sequence[float], series: Mapping[str, Sequence[float]], xlabel: str,
               title: str) -> Path:
    """One line per entry of ``series`` (label -> y values over ``x``)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.2))
    for label, values in series.items():
        axis.plot(x, values, label=label)
    axis.set_xlabel(xlabel)
    axis.set_title(title)
    axis.legend()
    return _save(plt, figure, Path(path))


def grouped_bar_chart(
    path: str | Path,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    ylabel: str,
    title: str,
    errors: Mapping[str, Sequence[float]] | None = None,
    room_for_legend: bool = False,
) -> Path:
    """Bars grouped by ``groups`` (x tick labels), one bar per entry of ``series`` (label ->
    one value per group) in each group; ``errors`` (same keys) draws error bars, NaN for none.
    ``room_for_legend`` raises the y axis so that the legend does not hide the bars."""
    plt = _pyplot()
    width = 0.8 / len(series)
    figure, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) + 1.5), 3.8 if room_for_legend else 3.2))
    for index, (label, values) in enumerate(series.items()):
        positions = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        axis.bar(positions, values, width, label=label, capsize=2,
                 yerr=None if errors is None else errors[label])
    axis.set_xticks(range(len(groups)), groups, fontsize=8)
    if room_for_legend:
        tops = [value + (0.0 if errors is None or math.isnan(error) else error)
                for label, values in series.items()
                for value, error in zip(values, (errors or {}).get(label, [0.0] * len(values)), strict=True)]
        axis.set_ylim(0, max(max(tops, default=0.0) * 1.2, 1.0))
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8, ncol=len(series))
    return _save(plt, figure, Path(path))
