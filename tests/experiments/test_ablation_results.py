"""The ablation's paired statistics: differences from the GRPO arm by seed, hand-computed."""

import math
import statistics

import pytest

from videoktr.experiments.ablation_results import (
    format_paired_table,
    paired_differences,
    t_quantile_975,
)


def rows(arm, accuracies):
    return [{"arm": arm, "seed": seed, "overall": value} for seed, value in enumerate(accuracies)]


def test_paired_differences_by_hand():
    data = rows("grpo", [0.50, 0.40, 0.60, 0.55]) + rows("V+E+T", [0.55, 0.45, 0.60, 0.52])
    [entry] = paired_differences(data, ["grpo", "V+E+T"])
    differences = [0.05, 0.05, 0.0, -0.03]
    mean = sum(differences) / 4
    half = 3.182 * statistics.stdev(differences) / 2  # t(0.975, 3) = 3.182, sqrt(4) = 2
    assert entry["mean_difference"] == pytest.approx(mean)
    assert entry["ci95_low"] == pytest.approx(mean - half) and entry["ci95_high"] == pytest.approx(mean + half)
    assert (entry["ahead"], entry["level"], entry["behind"]) == (2, 1, 1)
    assert entry["seeds"] == [0, 1, 2, 3]
    table = format_paired_table([entry])
    assert "V+E+T" in table and "2/1/1" in table and f"{100 * mean:+.1f}" in table


def test_pairing_removes_what_a_seed_does_to_every_arm():
    """Seeds that move both arms by 20 points: unpaired the arms overlap, paired the +2 points
    in every seed gives an interval that excludes 0."""
    seed_effects = [0.0, 0.2, -0.2, 0.1, -0.1]
    data = rows("grpo", [0.5 + e for e in seed_effects]) + rows("V", [0.52 + e for e in seed_effects])
    [entry] = paired_differences(data, ["grpo", "V"])
    assert entry["ci95_low"] == pytest.approx(0.02) and entry["ci95_high"] == pytest.approx(0.02)
    assert entry["ahead"] == 5


def test_only_seeds_both_arms_ran_are_paired_and_one_seed_has_no_interval():
    data = rows("grpo", [0.5, 0.6]) + [{"arm": "E", "seed": 1, "overall": 0.7}]
    [entry] = paired_differences(data, ["grpo", "E"])
    assert entry["seeds"] == [1] and entry["mean_difference"] == pytest.approx(0.1)
    assert entry["ci95_low"] is None and "-" in format_paired_table([entry])
    assert paired_differences(rows("E", [0.5]), ["grpo", "E"]) == []  # no baseline rows


def test_t_quantiles():
    assert t_quantile_975(1) == 12.706 and t_quantile_975(2) == 4.303 and t_quantile_975(30) == 2.042
    assert t_quantile_975(45) == 2.021  # the next smaller tabled value: a slightly wider interval
    assert t_quantile_975(1000) == 1.960 and math.isclose(t_quantile_975(120), 1.980)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_a_world_of_visual_questions_shows_only_the_kinds_it_asks(tmp_path):
    from videoktr.experiments.ablate import aggregate
    from videoktr.experiments.ablation_results import asked_kinds, format_table, write_csvs

    rows = [{"arm": "grpo", "seed": seed, "overall": 0.5 + seed / 10, "visual": 0.5 + seed / 10} for seed in (0, 1)]
    summary = aggregate(rows, ["grpo"])
    before = {"overall": 0.4, "visual": 0.4}
    assert asked_kinds(summary, before) == ["overall", "visual"]
    table = format_table(summary, before)
    assert "temporal" not in table and "both" not in table and "55.0 ± 7.1" in table
    runs_csv, summary_csv = write_csvs(tmp_path, rows, summary, before)
    import csv

    warmup, grpo = list(csv.DictReader(summary_csv.open()))
    assert warmup["overall_mean"] == "0.4" and warmup["temporal_mean"] == "" and grpo["both_std"] == ""
    assert [row["temporal"] for row in csv.DictReader(runs_csv.open())] == ["", ""]
