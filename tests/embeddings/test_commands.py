"""`explainrec build` and `explainrec bench index|fold-in|serve|train` through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from embeddings.bundle import LATEST, Bundle
from explainrec.cli import main

ISSUE_KEYS = {
    "items",
    "dim",
    "index",
    "build_seconds",
    "p50_ms",
    "p99_ms",
    "exact_p50_ms",
    "recall_at_10",
    "speedup",
}


def test_bench_index_writes_the_issue_json(tmp_path: Path) -> None:
    out = tmp_path / "bench" / "index.json"
    rc = main(
        [
            "bench",
            "index",
            "--items",
            "4000",
            "--dim",
            "16",
            "--kind",
            "ivf",
            "--queries",
            "100",
            "--exact-queries",
            "20",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    result = json.loads(out.read_text())
    assert set(result) >= ISSUE_KEYS
    assert result["environment"]["cpus"] >= 1  # where and when it ran (explainrec/provenance.py)
    assert result["items"] == 4000 and result["dim"] == 16 and result["index"].startswith("ivf(")
    assert result["recall_at_10"] >= 0.98
    assert result["p50_ms"] > 0 and result["p99_ms"] >= result["p50_ms"] and result["speedup"] > 0


def test_bench_index_rejects_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "index", "--items", "3", "--dim", "16"]) == 2
    assert "--items must be >= 10" in capsys.readouterr().err


def test_bench_fold_in(toy_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "fold.json"
    assert main(["bench", "fold-in", "--bundle", str(toy_root), "--calls", "20", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["fold_in_p50_ms"] > 0 and result["cold_start_p50_ms"] > 0


def test_build_rebuilds_a_bundle_as_a_new_version(toy_bundle: Bundle, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(toy_bundle.path, root / toy_bundle.version)
    (root / LATEST).write_text(toy_bundle.version + "\n")
    rc = main(
        [
            "build",
            "--checkpoint",
            str(root),
            "--version",
            "reindexed",
            "--index",
            "hnsw",
            "--segments",
            "ward",
            "--k-max",
            "4",
        ]
    )
    assert rc == 0
    assert (root / LATEST).read_text().strip() == "reindexed"
    rebuilt = Bundle.load(root)
    assert rebuilt.retriever.info.kind == "hnsw" and rebuilt.segments.method == "ward"
    np.testing.assert_array_equal(rebuilt.user_vectors, toy_bundle.user_vectors)
    for u in range(5):
        assert set(rebuilt.retriever.search(rebuilt.user_vectors[u], 5)[0].tolist()) == set(
            toy_bundle.retriever.search(toy_bundle.user_vectors[u], 5)[0].tolist()
        )
    assert Bundle.load(root / toy_bundle.version).manifest == toy_bundle.manifest


def test_build_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["build", "--checkpoint", str(tmp_path), "--k-min", "5", "--k-max", "3"]) == 2
    assert "--k-min" in capsys.readouterr().err
