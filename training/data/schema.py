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


# Canonical pandas dtypes of the known columns; any other column is kept as an extra attribute.
USER_DTYPES: dict[str, str] = {
    "user_id": "str",
    "age": "Int64",
    "gender": "str",
    "occupation": "str",
    "location": "str",
    "income": "float64",
    "planted_segment": "Int64",
}
ITEM_DTYPES: dict[str, str] = {
    "item_id": "str",
    "title": "str",
    "price": "float64",
    "description": "str",
    "brand": "str",
    "year": "Int64",
}
INTERACTION_DTYPES: dict[str, str] = {
    "user_id": "str",
    "item_id": "str",
    "event": "str",
    "value": "float64",
    "quantity": "Int64",
}
TIMESTAMP_DTYPE = "datetime64[ns, UTC]"
# Columns holding a list of strings per row.
LIST_COLUMNS = ("categories", "tags")

TABLES = ("users", "items", "interactions")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": USER_REQUIRED,
    "items": ITEM_REQUIRED,
    "interactions": INTERACTION_REQUIRED,
}
DTYPES: dict[str, dict[str, str]] = {
    "users": USER_DTYPES,
    "items": ITEM_DTYPES,
    "interactions": INTERACTION_DTYPES,
}


def _as_str_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]  # type: ignore[attr-defined]


def coerce_dtypes(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Cast the known columns of `table` to their canonical dtypes (a copy; extras untouched).

    Values must already be parseable: loaders validate and report bad rows before this.
    """
    out = df.reset_index(drop=True).copy()
    for column, dtype in DTYPES[table].items():
        if column in out.columns:
            out[column] = out[column].astype(pd.api.types.pandas_dtype(dtype))
    if "timestamp" in out.columns:
        out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype(
            pd.api.types.pandas_dtype(TIMESTAMP_DTYPE)
        )
    for column in LIST_COLUMNS:
        if column in out.columns:
            out[column] = pd.Series([_as_str_list(v) for v in out[column]], index=out.index, dtype=object)
    return out
