"""`explainrec prepare` end to end on tiny data: tables, report file and printed summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explainrec.cli import main
from training.data.io import read_dataset


def test_prepare_movielens(ml100k_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (ml100k_dir / "u.data").open("a") as fh:
        fh.write("1\t99\t4\t881250961\n")
    out = tmp_path / "out"
    assert main(["prepare", "--dataset", "movielens", "--path", str(ml100k_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "users                 3" in printed and "interactions          6" in printed
    assert "density" in printed and "date range   1997-" in printed
    assert "dropped 1 interactions row(s)" in printed and "item_id not in the items table" in printed
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["stats"]["items"] == 4 and report["issues"][0]["count"] == 1
    assert len(read_dataset(out).interactions) == 6


def test_prepare_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert (
        main(
            [
                "prepare",
                "--dataset",
                "demo",
                "--users",
                "50",
                "--items",
                "40",
                "--seed",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    ds = read_dataset(out)
    assert len(ds.users) == 50 and len(ds.items) == 40
    assert "dropped or fixed rows: none" in capsys.readouterr().out


def test_prepare_csv(shop_mapping: Path, tmp_path: Path) -> None:
    out = tmp_path / "shop"
    assert main(["prepare", "--dataset", "csv", "--config", str(shop_mapping), "--out", str(out)]) == 0
    assert read_dataset(out).name == "tiny-shop"


@pytest.mark.parametrize(
    "argv",
    [
        ["--dataset", "movielens", "--download", "ml-2m"],
        ["--dataset", "demo", "--download", "ml-1m"],
        ["--dataset", "movielens"],
        ["--dataset", "csv"],
    ],
)
def test_bad_arguments_are_clear_errors(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prepare", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") or "\nerror: " in err
    assert "Traceback" not in err
