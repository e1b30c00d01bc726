"""Shared fixtures: one small synthetic dataset, written once per session."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from videoktr.synthetic import SynthSummary, generate_dataset

SEED = 3
N_ROWS = 24  # 8 per kind


@dataclass(frozen=True)
class Written:
    summary: SynthSummary
    rows: list[dict]  # train then test

    @property
    def out(self) -> Path:
        return self.summary.out_dir


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    summary = generate_dataset(tmp_path_factory.mktemp("synth"), N_ROWS, SEED, progress=False)
    rows = read_jsonl(summary.train_file) + read_jsonl(summary.test_file)
    return Written(summary, rows)
