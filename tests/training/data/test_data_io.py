"""Parquet round trip of the canonical tables, with the schema version checked on read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from explainrec.errors import DataError
from training.data.demo_shop import generate_demo_shop
from training.data.io import VERSION_KEY, read_dataset, write_dataset
from training.data.schema import SCHEMA_VERSION, Dataset


def test_round_trip_keeps_every_table_and_dtype(tmp_path: Path) -> None:
    ds = generate_demo_shop(seed=3, n_users=40, n_items=50)
    write_dataset(ds, tmp_path / "out")
    back = read_dataset(tmp_path / "out")
    assert back.name == ds.name
    for table in ("users", "items", "interactions"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(ds, table))
    assert isinstance(back.items["categories"].iloc[0], list)
    assert str(back.interactions["timestamp"].dtype) == "datetime64[ns, UTC]"
    meta = pq.read_schema(tmp_path / "out" / "users.parquet").metadata
    assert meta[VERSION_KEY] == str(SCHEMA_VERSION).encode()


def test_empty_category_lists_survive(tmp_path: Path) -> None:
    ds = Dataset(
        name="tiny",
        users=pd.DataFrame({"user_id": ["u1"]}),
        items=pd.DataFrame({"item_id": ["i1", "i2"], "title": ["A", "B"], "categories": [[], []]}),
        interactions=pd.DataFrame(
            {
                "user_id": ["u1"],
                "item_id": ["i1"],
                "event": ["click"],
                "timestamp": [pd.Timestamp("2025-01-01", tz="UTC")],
            }
        ),
    )
    write_dataset(ds, tmp_path)
    assert read_dataset(tmp_path).items["categories"].tolist() == [[], []]


def test_missing_table_and_wrong_version_are_errors(tmp_path: Path) -> None:
    write_dataset(generate_demo_shop(n_users=20, n_items=20), tmp_path)
    table = pq.read_table(tmp_path / "items.parquet")
    pq.write_table(table.replace_schema_metadata({VERSION_KEY: b"999"}), tmp_path / "items.parquet")
    with pytest.raises(DataError, match="schema version 999"):
        read_dataset(tmp_path)
    (tmp_path / "users.parquet").unlink()
    with pytest.raises(DataError, match=r"users\.parquet: missing"):
        read_dataset(tmp_path)
    with pytest.raises(DataError, match="no such directory"):
        read_dataset(tmp_path / "absent")
