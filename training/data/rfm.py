"""Per-user RFM features (recency, frequency, monetary), the classic shopper segmentation.

recency_days  days from the user's last interaction to the data set's last interaction
              (the data set's own "now", so results do not depend on the wall clock)
frequency     number of purchases if the data set has any purchase events; otherwise
              (e.g. MovieLens) number of interactions
monetary      total spend: purchase `value`, else item price x quantity; 0.0 where no
              priced purchases exist
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RFM_COLUMNS = ["recency_days", "frequency", "monetary"]


def rfm_features(interactions: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """RFM per user_id seen in `interactions` (index: user_id, sorted)."""
    if interactions.empty:
        return pd.DataFrame(columns=RFM_COLUMNS, index=pd.Index([], name="user_id", dtype="str"))
    now = interactions["timestamp"].max()
    last = interactions.groupby("user_id", observed=True)["timestamp"].max()
    recency = (now - last).dt.total_seconds() / 86_400.0

    is_purchase = interactions["event"].astype(str) == "purchase"
    counted = interactions[is_purchase] if is_purchase.any() else interactions
    frequency = counted.groupby("user_id", observed=True).size()

    purchases = interactions[is_purchase]
    spend = pd.Series(np.nan, index=purchases.index, dtype="float64")
    if "value" in purchases.columns:
        spend = purchases["value"].astype("float64")
    if "price" in items.columns:
        price = purchases["item_id"].map(items.set_index("item_id")["price"]).astype("float64")
        qty = purchases["quantity"].astype("float64").fillna(1.0) if "quantity" in purchases.columns else 1.0
        spend = spend.fillna(price * qty)
    monetary = spend.fillna(0.0).groupby(purchases["user_id"], observed=True).sum()

    out = pd.DataFrame({"recency_days": recency})
    out["frequency"] = frequency.reindex(out.index).fillna(0).astype("int64")
    out["monetary"] = monetary.reindex(out.index).fillna(0.0).astype("float64")
    out.index.name = "user_id"
    return out.sort_index()
