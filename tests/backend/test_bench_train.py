"""`explainrec bench train` on a tiny demo shop: per-epoch samples/s and time to the best NDCG@10."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explainrec.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "data.demo_users=60",
    "data.demo_items=80",
    "features.use_text=false",
    "trainer.accelerator=cpu",
    "trainer.patience=5",
]


def test_bench_train_reports_each_epoch_and_the_best(tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    args = ["bench", "train", "--config", str(ROOT / "configs/demo.yaml"), "--max-epochs", "3"]
    args += ["--batch-size", "16", "--json", str(out)]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    report = json.loads(out.read_text("utf-8"))
    assert report["batch_size"] == 16 and report["precision"] == "32-true"
    assert report["environment"]["packages"]["torch"] and report["environment"]["finished_at"]
    assert [e["epoch"] for e in report["epochs"]] == [0.0, 1.0, 2.0]
    for epoch in report["epochs"]:
        assert epoch["samples"] > 0 and epoch["samples_per_s"] > 0 and 0 <= epoch["val_ndcg@10"] <= 1
    best = max(e["val_ndcg@10"] for e in report["epochs"])
    assert report["best_val_ndcg@10"] == pytest.approx(best, abs=1e-4)
    best_epoch = report["epochs"][report["best_epoch"]]
    assert report["seconds_to_best"] == pytest.approx(best_epoch["elapsed_s"], abs=1.0)
    assert 0 < report["seconds_to_best"] <= report["fit_seconds"] + 1.0


def test_bench_train_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "train", "--config", str(ROOT / "configs/demo.yaml"), "--max-epochs", "0"]) == 2
    assert "--max-epochs must be at least 1" in capsys.readouterr().err


def test_bench_train_runs_the_gpu_recipe_in_bf16_on_the_cpu(tmp_path: Path) -> None:
    # docs/gpu.md's command uses bf16-mixed and a large batch; the same code path runs under CPU
    # autocast here, so a GPU session starts from a recipe that is known to train.
    out = tmp_path / "train.json"
    args = ["bench", "train", "--config", str(ROOT / "configs/demo.yaml"), "--max-epochs", "2"]
    args += ["--batch-size", "512", "--precision", "bf16-mixed", "--json", str(out)]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    report = json.loads(out.read_text("utf-8"))
    assert report["precision"] == "bf16-mixed" and report["batch_size"] == 512
    assert all(0 <= e["val_ndcg@10"] <= 1 and e["samples"] > 0 for e in report["epochs"])
    assert report["best_val_ndcg@10"] > 0
