"""MovieLens loaders on tiny fixture files in each release format, plus the real 100K if present."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from explainrec.errors import ConfigError, DataError
from training.data.loaders import load_dataset
from training.data.loaders.download import check_name, release_url
from training.data.loaders.movielens import clean_title

REAL_ML100K = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "ml-100k"


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("Usual Suspects, The (1995)", "The Usual Suspects", 1995),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "The City of Lost Children (Cité des enfants perdus, La)",
            1995,
        ),
        ("Babylon 5 (1994) ", "Babylon 5", 1994),
        ("Fawlty Towers (1975-1979)", "Fawlty Towers", 1975),
        ("unknown", "unknown", None),
    ],
)
def test_clean_title(raw: str, title: str, year: int | None) -> None:
    assert clean_title(raw) == (title, year)


def test_100k(ml100k_dir: Path) -> None:
    ds, report = load_dataset("movielens", ml100k_dir)
    assert ds.name == "movielens-100k"
    assert (len(ds.users), len(ds.items), len(ds.interactions)) == (3, 4, 6)
    items = ds.items.set_index("item_id")
    assert items.loc["2", "title"] == "The Usual Suspects"
    assert items.loc["3", "title"] == "Café au lait"  # latin-1 decoded
    assert items.loc["3", "categories"] == ["Action", "Comedy"]
    assert items.loc["4", "categories"] == []  # the "unknown" genre is no category
    assert items.loc["1", "year"] == 1995 and items["year"].isna().loc["4"]
    users = ds.users.set_index("user_id")
    assert users.loc["2", "age"] == 53 and users.loc["2", "occupation"] == "other"
    inter = ds.interactions
    assert set(inter["event"]) == {"rating"}
    assert inter["value"].sum() == pytest.approx(20.0)
    assert inter["timestamp"].min() == pd.Timestamp(881250949, unit="s", tz="UTC")
    assert report.issues == [] and report.stats["interactions"] == 6


def test_1m(ml1m_dir: Path) -> None:
    ds, report = load_dataset("movielens", ml1m_dir)
    assert ds.name == "movielens-1m"
    items = ds.items.set_index("item_id")
    assert items.loc["2", "title"] == "The City of Lost Children (Cité des enfants perdus, La)"
    assert items.loc["2", "categories"] == ["Adventure", "Sci-Fi"]
    users = ds.users.set_index("user_id")
    assert users.loc["1", "gender"] == "F" and users.loc["1", "age"] == 1
    assert users.loc["1", "occupation"] == "K-12 student"  # code 10
    assert users.loc["2", "occupation"] == "self-employed"  # code 16
    assert len(ds.interactions) == 4 and ds.interactions["value"].max() == 5.0
    assert any("age groups" in n for n in report.notes)


def test_csv_release_with_tags(csv_release_dir: Path) -> None:
    ds, report = load_dataset("movielens", csv_release_dir)
    assert ds.name == "movielens-ml-latest-small"
    items = ds.items.set_index("item_id")
    assert items.loc["2", "title"] == "The American President"
    assert items.loc["3", "categories"] == [] and items["year"].isna().loc["3"]
    assert items.loc["4", "year"] == 1994
    assert items.loc["1", "tags"] == ["pixar", "fun"]  # most frequent first, case-folded
    assert sorted(ds.users["user_id"]) == ["1", "2", "3"]  # derived: no users table
    assert ds.interactions["value"].min() == pytest.approx(0.5)
    reasons = [i.reason for i in report.issues]
    assert reasons == ["tag for an item not in the movies table"]
    assert any("derived from the interactions" in n for n in report.notes)


def test_release_one_level_down_is_found(tmp_path: Path, ml1m_dir: Path) -> None:
    ds, _ = load_dataset("movielens", ml1m_dir.parent)
    assert ds.name == "movielens-1m"


def test_folder_without_movielens_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"not a MovieLens folder.*u\.data.*notes\.txt"):
        load_dataset("movielens", tmp_path)
    with pytest.raises(DataError, match="no such directory"):
        load_dataset("movielens", tmp_path / "absent")


def test_download_names_are_validated_without_network() -> None:
    assert release_url("ML-1M") == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    assert check_name("ml-latest-small") == "ml-latest-small"
    with pytest.raises(ConfigError, match=r"not an official MovieLens release.*ml-100k"):
        load_dataset("movielens", None, download="ml-2m")


@pytest.mark.skipif(not REAL_ML100K.is_dir(), reason="real MovieLens 100K not present in ../shared")
def test_real_movielens_100k() -> None:
    ds, report = load_dataset("movielens", REAL_ML100K)
    assert (len(ds.users), len(ds.items), len(ds.interactions)) == (943, 1682, 100000)
    assert report.dropped_total() == 0
    assert ds.items["categories"].map(len).gt(0).sum() >= 1680
