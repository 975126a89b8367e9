"""The package boundaries of ARCHITECTURE.md, checked on the source (lazy imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"training", "embeddings", "explain", "backend", "explainrec"}
# Leaves every package may use (no imports of ours): the version string, plain exception types,
# and the CLI options/report helpers and run provenance the benchmark commands in training/ and
# backend/ share.
SHARED_LEAVES = {"explainrec", "explainrec.errors", "explainrec.cli_options", "explainrec.provenance"}
ALLOWED = {
    "training": {"training", "embeddings"},
    "embeddings": {"embeddings"},
    "explain": {"explain"},
    "backend": {"backend", "embeddings", "explain"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top not in OURS or module in SHARED_LEAVES or top in ALLOWED[package]:
                continue
            found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_architecture_allows(package: str) -> None:
    assert violations(package) == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from training.train import train\n", encoding="utf-8")
    assert imported_modules(sneaky) == {"training.train"}
