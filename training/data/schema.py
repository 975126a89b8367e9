"""The canonical tables every loader produces and every later stage reads.

users        user_id: str, then optional profile attributes
             age: Int64, gender: str, occupation: str, location: str, income: float, ...
items        item_id: str, title: str, categories: list[str],
             optional price: float, description: str, brand: str, year: Int64, ...
interactions user_id: str, item_id: str, timestamp: datetime64[ns, UTC], event: str,
             optional value: float (rating or amount), quantity: Int64

Ids are strings everywhere outside a bundle. Stored as Parquet with SCHEMA_VERSION in the
file metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SCHEMA_VERSION = 1

EVENT_TYPES = ("view", "click", "cart", "purchase", "rating", "like", "dismiss")

USER_REQUIRED = ("user_id",)
USER_PROFILE_FIELDS = ("age", "gender", "occupation", "location", "income")
ITEM_REQUIRED = ("item_id", "title", "categories")
ITEM_OPTIONAL = ("price", "description", "brand", "year")
INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp", "event")
INTERACTION_OPTIONAL = ("value", "quantity")


@dataclass
class Dataset:
    """The three canonical tables of one data set, validated."""

    name: str
    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
