"""A small planted data set for the harness tests: even users like even items (odd: odd)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data.schema import Dataset

N_USERS, N_ITEMS = 60, 40


def make_planted_dataset(seed: int = 0) -> Dataset:
    """Even users rate even items 5 (odd: odd), plus a few low ratings that are not positives."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for user in range(N_USERS):
        liked = rng.choice(np.arange(user % 2, N_ITEMS, 2), size=12, replace=False)
        disliked = rng.choice(np.arange(1 - user % 2, N_ITEMS, 2), size=2, replace=False)
        for k, item in enumerate([*liked, *disliked]):
            rating = 5.0 if k < len(liked) else 1.0
            rows.append((f"u{user}", f"i{item}", start + pd.Timedelta(hours=user * 20 + k), "rating", rating))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "value"])
    users = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in range(N_USERS)],
            "gender": ["F" if u % 2 == 0 else "M" for u in range(N_USERS)],
            "age": pd.array([25 + u % 30 for u in range(N_USERS)], dtype="Int64"),
            "occupation": ["writer" if u % 3 else "doctor" for u in range(N_USERS)],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(N_ITEMS)],
            "title": [f"Item {i}" for i in range(N_ITEMS)],
            "categories": [["Even"] if i % 2 == 0 else ["Odd"] for i in range(N_ITEMS)],
        }
    )
    return Dataset("planted", users, items, interactions)


@pytest.fixture(scope="session")
def planted() -> Dataset:
    return make_planted_dataset()
