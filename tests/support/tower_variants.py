"""Tower settings several test modules build models from."""

from __future__ import annotations

# The ML-100K recipe's tower shape (configs/ml100k.yaml): raw inner products, a wide linear path.
DOT_WIDE: dict[str, object] = {
    "similarity": "dot",
    "wide": True,
    "history_item_embedding": True,
    "history_item_norm": "sqrt",
    "history_tied": False,
    "item_bias": True,
}
