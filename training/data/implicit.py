"""The implicit-feedback view: which interactions count as positives, and how much.

A rating counts when its value is at least `min_rating`; any other listed event always
counts. A user-item pair that is positive several times (view -> click -> purchase) becomes
one row: its first positive time (when the user first showed interest, so temporal splits
never see the item again after the cut) and its strongest weight.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from pydantic import Field

from training.config import StrictModel

POSITIVE_COLUMNS = ["user_id", "item_id", "timestamp", "weight"]

DEFAULT_WEIGHTS: dict[str, float] = {
    "view": 0.5,
    "click": 1.0,
    "like": 2.0,
    "cart": 2.0,
    "purchase": 3.0,
    "rating": 1.0,
}


class PositiveRule(StrictModel):
    """Which events are positives. Usable as a config section (`positives:` in a YAML file)."""

    min_rating: float = 4.0
    events: tuple[str, ...] = ("click", "cart", "purchase", "rating", "like")
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))


def _weights(rule: PositiveRule) -> Mapping[str, float]:
    # An event listed as positive but given no weight counts as 1.
    return {event: rule.weights.get(event, 1.0) for event in rule.events}


def positives(interactions: pd.DataFrame, rule: PositiveRule | None = None) -> pd.DataFrame:
    """One row per positive (user, item): user_id, item_id, timestamp (first positive), weight (max).

    Sorted by user_id, timestamp, item_id so the output is deterministic.
    """
    rule = rule or PositiveRule()
    weights = _weights(rule)
    events = interactions["event"].astype(str)
    keep = events.isin(list(weights))
    if "rating" in weights:
        values = interactions["value"] if "value" in interactions.columns else pd.Series(float("nan"))
        keep &= ~((events == "rating") & ~(values >= rule.min_rating))
    rows = interactions.loc[keep, ["user_id", "item_id", "timestamp"]].copy()
    rows["weight"] = events[keep].map(weights).astype("float64")
    if rows.empty:
        return pd.DataFrame(
            {
                "user_id": pd.Series(dtype="str"),
                "item_id": pd.Series(dtype="str"),
                "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
                "weight": pd.Series(dtype="float64"),
            }
        )
    grouped = rows.groupby(["user_id", "item_id"], sort=False, observed=True).agg(
        timestamp=("timestamp", "min"), weight=("weight", "max")
    )
    out = grouped.reset_index().sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    return out.reset_index(drop=True)[POSITIVE_COLUMNS]
