"""Per-bundle lookup tables built once at load, so requests never touch a DataFrame.

Holds item attributes as Python lists, bundle users' profiles as dicts, popularity, and the
users-per-item counts (overall, per segment, per profile value) that segment and profile
evidence need.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Profile fields whose values get "popular with shoppers like you" lifts; values held by fewer
# users than this are too thin to claim anything about.
LIFT_FIELDS = ("gender", "occupation", "location")
MIN_USERS_FOR_LIFT = 5
MAX_VALUES_PER_FIELD = 60
PROFILE_FIELDS = ("age", "gender", "occupation", "location", "income")


def _clean(value: Any) -> Any:
    """A JSON-able scalar, or None for pandas/numpy missing values."""
    if value is None:
        return None
    if isinstance(value, np.ndarray | list | tuple):
        return [_clean(v) for v in list(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


@dataclass
class ItemRecord:
    index: int
    item_id: str
    title: str
    categories: list[str]
    price: float | None
    attributes: dict[str, Any]  # every other column of the items table, JSON-able


class Catalogue:
    def __init__(
        self,
        items: pd.DataFrame,
        users: pd.DataFrame,
        user_ids: Sequence[str],
        history: dict[str, np.ndarray],
        segment_labels: np.ndarray,
        n_segments: int,
    ) -> None:
        self.items: list[ItemRecord] = []
        extra_cols = [c for c in items.columns if c not in ("item_id", "title", "categories", "price")]
        has_price = "price" in items.columns
        for i, row in enumerate(items.to_dict(orient="records")):
            price = _clean(row.get("price")) if has_price else None
            self.items.append(
                ItemRecord(
                    index=i,
                    item_id=str(row["item_id"]),
                    title=str(row["title"]),
                    categories=_as_list(row.get("categories")),
                    price=float(price) if price is not None else None,
                    attributes={c: _clean(row.get(c)) for c in extra_cols},
                )
            )
        self.titles_lower = [it.title.casefold() for it in self.items]
        self.categories = sorted({c for it in self.items for c in it.categories})

        self.user_profiles: dict[str, dict[str, Any]] = {}
        profile_cols = [c for c in PROFILE_FIELDS if c in users.columns]
        for row in users[["user_id", *profile_cols]].to_dict(orient="records"):
            profile = {c: _clean(row[c]) for c in profile_cols}
            self.user_profiles[str(row["user_id"])] = {k: v for k, v in profile.items() if v is not None}

        n_items = len(self.items)
        self.n_users = len(user_ids)
        # Users per item (each user counts an item once), overall and per segment.
        self.users_per_item = np.zeros(n_items, dtype=np.float64)
        self.segment_users_per_item = np.zeros((max(1, n_segments), n_items), dtype=np.float64)
        self.segment_sizes = np.bincount(segment_labels, minlength=max(1, n_segments)).astype(np.int64)
        label_of = {
            str(u): int(segment_labels[row]) for row, u in enumerate(user_ids) if row < len(segment_labels)
        }
        value_counts: dict[tuple[str, str], np.ndarray] = {}
        value_sizes: dict[tuple[str, str], int] = {}
        popular_values = self._popular_values()
        for user, idx in history.items():
            unique = np.unique(idx)
            self.users_per_item[unique] += 1
            seg = label_of.get(user)
            if seg is not None:
                self.segment_users_per_item[seg, unique] += 1
            for field_name, value in self.user_profiles.get(user, {}).items():
                key = (field_name, str(value))
                if key in popular_values:
                    counts = value_counts.setdefault(key, np.zeros(n_items, dtype=np.float64))
                    counts[unique] += 1
                    value_sizes[key] = value_sizes.get(key, 0) + 1
        self.value_users_per_item = value_counts
        self.value_sizes = value_sizes
        self.users_with_history = len(history)
        # Each item's rank within each segment as `item_standing` defines it (1 + the items more
        # users of the segment have), computed once rather than per explained item.
        ordered = np.sort(self.segment_users_per_item, axis=1)
        self.segment_item_rank = (
            1
            + n_items
            - np.stack(
                [
                    np.searchsorted(row, counts, side="right")
                    for row, counts in zip(ordered, self.segment_users_per_item, strict=True)
                ]
            )
        )
        self.popularity_order = np.argsort(-self.users_per_item, kind="stable")
        top = float(self.users_per_item.max()) if n_items else 0.0
        self.popularity_score = self.users_per_item / top if top > 0 else self.users_per_item

    def _popular_values(self) -> set[tuple[str, str]]:
        counts: dict[tuple[str, str], int] = {}
        for profile in self.user_profiles.values():
            for field_name in LIFT_FIELDS:
                if field_name in profile:
                    key = (field_name, str(profile[field_name]))
                    counts[key] = counts.get(key, 0) + 1
        keep: set[tuple[str, str]] = set()
        for field_name in LIFT_FIELDS:
            ranked = sorted(
                ((n, k) for k, n in counts.items() if k[0] == field_name and n >= MIN_USERS_FOR_LIFT),
                reverse=True,
            )[:MAX_VALUES_PER_FIELD]
            keep.update(k for _, k in ranked)
        return keep

    def profile_lift(self, field_name: str, value: str, item_index: int) -> float | None:
        """How much likelier users with this profile value are to have the item than users overall."""
        counts = self.value_users_per_item.get((field_name, value))
        overall = self.users_per_item[item_index] if len(self.users_per_item) else 0.0
        if counts is None or overall <= 0 or self.users_with_history == 0:
            return None
        size = self.value_sizes[(field_name, value)]
        return float((counts[item_index] / size) / (overall / self.users_with_history))
