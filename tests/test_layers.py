"""The library's layers import only downward, and nothing in the library imports the experiments.

Read from the source with ``ast`` (imports inside functions count too), so a new import that
breaks the layering fails here, not in a user's circular-import traceback.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "videoktr"

# Lowest first. A package may import itself and the packages of lower layers only
# (``__init__`` is the package root, videoktr/__init__.py).
LAYERS = (
    ("core", "defaults", "_specs"),
    ("data",),
    ("rewards",),
    ("models",),
    ("attribution",),
    ("rollout",),
    ("analysis",),
    ("synthetic",),
    ("eval",),
    ("train",),
    ("experiments",),
    ("__init__",),  # the package root: the public API
    ("cli",),
    ("__main__",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def package_of(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_packages(path: Path) -> set[str]:
    """The top-level videoktr packages ``path`` imports (``videoktr.x.y`` and relative imports)."""
    module_parts = ["videoktr", *path.relative_to(ROOT).with_suffix("").parts]
    package = module_parts[:-1]  # the package a relative import starts from
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            names = [".".join([*base, node.module])] if node.module else [".".join([*base, a.name]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "videoktr":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        graph[package_of(path)] |= imported_packages(path) - {package_of(path)}
    return graph


GRAPH = import_graph()


def test_every_package_has_a_layer():
    assert set(GRAPH) | {name for targets in GRAPH.values() for name in targets} <= set(RANK)


@pytest.mark.parametrize("package", sorted(GRAPH))
def test_imports_point_down(package):
    upward = sorted(name for name in GRAPH[package] if RANK[name] >= RANK[package])
    assert not upward, f"{package} (layer {RANK[package]}) imports {upward}"


def test_the_rules_the_layout_promises():
    assert not GRAPH["core"], "core is pure tensor math: it imports nothing of videoktr"
    assert not GRAPH["synthetic"] & {"train", "models"}, "the synthetic world trains nothing"
    assert "train" not in GRAPH["eval"]
    importers = sorted(package for package, targets in GRAPH.items() if "experiments" in targets)
    assert importers == ["cli"], f"only the CLI may import the experiments, not {importers}"
