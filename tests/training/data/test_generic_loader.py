"""Generic CSV/Parquet import driven by a YAML column mapping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from explainrec.errors import ConfigError, DataError
from training.data.loaders import load_dataset


def test_csv_with_mapping(shop_mapping: Path) -> None:
    ds, report = load_dataset("csv", None, config=shop_mapping)
    assert ds.name == "tiny-shop"
    items = ds.items.set_index("item_id")
    assert items.loc["p1", "title"] == "Red Mug"
    assert items.loc["p1", "categories"] == ["Home", "Kitchen"]
    assert items.loc["p2", "price"] == pytest.approx(24.0)
    assert items.loc["p1", "colour"] == "red"  # extra column kept
    users = ds.users.set_index("user_id")
    assert users.loc["c2", "age"] == 41 and users.loc["c1", "location"] == "Leeds"
    inter = ds.interactions
    assert list(inter["event"]) == ["view", "cart", "purchase", "view"]
    # The +01:00 offset is converted to UTC.
    assert inter["timestamp"].iloc[-1] == pd.Timestamp("2025-01-03T07:00:00Z")
    assert report.issues == []


def test_parquet_tables_and_constant_event(tmp_path: Path, write: Callable[..., Path]) -> None:
    pd.DataFrame({"id": ["a", "b"], "name": ["A", "B"]}).to_parquet(tmp_path / "items.parquet")
    pd.DataFrame({"u": ["x", "y"], "id": ["a", "b"], "t": [1_700_000_000_000, 1_700_000_100_000]}).to_parquet(
        tmp_path / "orders.parquet"
    )
    mapping = write(
        tmp_path / "m.yaml",
        [
            "items: {path: items.parquet, columns: {item_id: id, title: name}}",
            "interactions:",
            "  path: orders.parquet",
            "  columns: {user_id: u, item_id: id, timestamp: t}",
            "  timestamp_unit: ms",
            "  event: purchase",
        ],
    )
    ds, report = load_dataset("csv", tmp_path, config=mapping)
    assert set(ds.interactions["event"]) == {"purchase"}
    assert ds.interactions["timestamp"].iloc[0] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert ds.items["categories"].tolist() == [[], []]
    assert sorted(ds.users["user_id"]) == ["x", "y"]
    assert any("no categories column" in n for n in report.notes)


def test_mapping_errors_name_key_and_file(shop_mapping: Path, write: Callable[..., Path]) -> None:
    text = shop_mapping.read_text().replace("categories_separator", "category_sep")
    bad = write(shop_mapping.parent / "bad.yaml", text.splitlines())
    with pytest.raises(ConfigError, match=r"bad\.yaml.*items\.category_sep"):
        load_dataset("csv", None, config=bad)
    text = shop_mapping.read_text().replace("price: price_eur", "cost: price_eur")
    bad = write(shop_mapping.parent / "bad2.yaml", text.splitlines())
    with pytest.raises(ConfigError, match=r"bad2\.yaml.*'cost'"):
        load_dataset("csv", None, config=bad)
    with pytest.raises(ConfigError, match="--config"):
        load_dataset("csv", None)


def test_mapped_column_missing_from_file(shop_mapping: Path) -> None:
    text = shop_mapping.read_text().replace("title: name", "title: product_name")
    shop_mapping.write_text(text)
    with pytest.raises(DataError, match=r"products\.csv: missing column\(s\) \['product_name'\]"):
        load_dataset("csv", None, config=shop_mapping)


def test_no_event_column_and_no_constant(shop_mapping: Path) -> None:
    text = shop_mapping.read_text().replace(", event: action", "")
    shop_mapping.write_text(text)
    with pytest.raises(DataError, match="no event column"):
        load_dataset("csv", None, config=shop_mapping)
