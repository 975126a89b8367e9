"""Positive-feedback rules and RFM features, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data.implicit import PositiveRule, positives
from training.data.rfm import rfm_features


def _frame(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "day", "event", "value", "quantity"])
    df["timestamp"] = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(df.pop("day"), unit="D")
    return df


def test_rating_threshold_and_event_rule() -> None:
    df = _frame(
        [
            ("u1", "a", 0, "rating", 5.0, None),
            ("u1", "b", 1, "rating", 3.5, None),
            ("u1", "c", 2, "view", None, None),
            ("u1", "d", 3, "dismiss", None, None),
            ("u2", "a", 4, "rating", 4.0, None),
        ]
    )
    pos = positives(df)
    assert list(zip(pos["user_id"], pos["item_id"], strict=True)) == [("u1", "a"), ("u2", "a")]
    lenient = positives(df, PositiveRule(min_rating=3.0, events=("rating", "view")))
    assert set(lenient["item_id"]) == {"a", "b", "c"}


def test_repeated_positives_become_one_row_first_time_max_weight() -> None:
    df = _frame(
        [
            ("u1", "a", 5, "click", None, None),
            ("u1", "a", 6, "purchase", 10.0, 1),
            ("u1", "a", 2, "cart", None, None),
        ]
    )
    pos = positives(df)
    assert len(pos) == 1
    assert pos["timestamp"].iloc[0] == pd.Timestamp("2025-01-03", tz="UTC")
    assert pos["weight"].iloc[0] == pytest.approx(3.0)
    assert list(pos.columns) == ["user_id", "item_id", "timestamp", "weight"]


def test_no_positives_gives_typed_empty_frame() -> None:
    pos = positives(_frame([("u1", "a", 0, "view", None, None)]))
    assert pos.empty and str(pos["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_rfm_values() -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "price": [10.0, 4.0]})
    df = _frame(
        [
            ("u1", "a", 0, "purchase", 20.0, 2),
            ("u1", "b", 3, "purchase", np.nan, 3),  # no value: price x quantity = 12
            ("u1", "a", 4, "view", None, None),
            ("u2", "b", 10, "view", None, None),
        ]
    )
    rfm = rfm_features(df, items)
    assert list(rfm.index) == ["u1", "u2"]
    assert rfm.loc["u1", "recency_days"] == pytest.approx(6.0)
    assert rfm.loc["u2", "recency_days"] == pytest.approx(0.0)
    assert rfm.loc["u1", "frequency"] == 2 and rfm.loc["u2", "frequency"] == 0
    assert rfm.loc["u1", "monetary"] == pytest.approx(32.0)
    assert rfm.loc["u2", "monetary"] == pytest.approx(0.0)


def test_rfm_without_purchases_counts_interactions() -> None:
    df = _frame([("u1", "a", 0, "rating", 4.0, None), ("u1", "b", 1, "rating", 2.0, None)])
    rfm = rfm_features(df, pd.DataFrame({"item_id": ["a", "b"]}))
    assert rfm.loc["u1", "frequency"] == 2 and rfm.loc["u1", "monetary"] == 0.0
