"""`explainrec evaluate` on a tiny MovieLens CSV-release folder (ratings.csv + movies.csv)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explainrec.cli import main

N_USERS, N_ITEMS = 50, 40


@pytest.fixture(scope="module")
def movielens_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Even users rate even movies 5 and odd users odd movies; a few 2-star ratings are noise."""
    folder = tmp_path_factory.mktemp("ml-tiny")
    rng = np.random.default_rng(0)
    genres = ("Comedy", "Drama")
    movies = ["movieId,title,genres"] + [
        f'{i},"Movie {i} ({1990 + i % 10})",{genres[i % 2]}|Romance' for i in range(1, N_ITEMS + 1)
    ]
    ratings = ["userId,movieId,rating,timestamp"]
    for user in range(1, N_USERS + 1):
        liked = rng.choice(np.arange(2 - user % 2, N_ITEMS + 1, 2), size=10, replace=False)
        for k, item in enumerate(liked):
            ratings.append(f"{user},{item},5.0,{1_000_000_000 + user * 1000 + k}")
        ratings.append(f"{user},{1 + user % 2},2.0,{1_000_000_000 + user * 1000 + 50}")
    (folder / "movies.csv").write_text("\n".join(movies) + "\n", encoding="utf-8")
    (folder / "ratings.csv").write_text("\n".join(ratings) + "\n", encoding="utf-8")
    return folder


def test_writes_the_documented_json(
    movielens_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            "--dataset",
            "movielens",
            "--path",
            str(movielens_csv),
            "--protocol",
            "random",
            "--models",
            "popular,ease",
            "--trials",
            "2",
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    document = json.loads(out.read_text())
    assert document["protocol"] == "random"
    assert document["split"]["users"] == N_USERS and document["split"]["items"] == N_ITEMS
    assert sum(document["split"][k] for k in ("train", "valid", "test")) == N_USERS * 10
    by_model = {r["model"]: r for r in document["results"]}
    assert list(by_model) == ["popular", "ease"]
    assert by_model["ease"]["metrics"]["ndcg@10"] > by_model["popular"]["metrics"]["ndcg@10"]
    assert by_model["ease"]["trials"] == 2
    assert document["run"]["trials"] == 2 and isinstance(document["run"]["seed"], int)
    assert document["environment"]["packages"]["numpy"] and document["environment"]["cpus"] >= 1
    table = capsys.readouterr().out
    assert "ease" in table and "ndcg@10" in table


def test_temporal_protocol_runs(movielens_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "temporal.json"
    assert (
        main(
            [
                "evaluate",
                "--dataset",
                "movielens",
                "--path",
                str(movielens_csv),
                "--protocol",
                "temporal",
                "--models",
                "itemknn",
                "--trials",
                "1",
                "--json",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    document = json.loads(out.read_text())
    assert document["split"]["test"] == N_USERS  # leave-last-one-out


def test_wrong_model_for_protocol_is_a_clear_error(
    movielens_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "evaluate",
            "--dataset",
            "movielens",
            "--path",
            str(movielens_csv),
            "--protocol",
            "cold-start",
            "--models",
            "ease",
            "--quiet",
        ]
    )
    assert code == 2
    assert "cannot rank under the cold-start protocol" in capsys.readouterr().err


def test_missing_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "evaluate",
            "--dataset",
            "movielens",
            "--path",
            str(tmp_path / "nope"),
            "--models",
            "popular",
            "--quiet",
        ]
    )
    assert code == 2
    assert "error:" in capsys.readouterr().err
