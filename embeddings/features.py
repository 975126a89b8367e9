"""Feature encoders shared by training and serving: raw ids and profiles -> model indices.

A `FeatureSpec` is plain JSON (no pickle) and travels inside the bundle, so the service
encodes a new user's profile form exactly as training encoded the training users.

Index conventions: user index 0 means "unknown / no id" (ids start at 1); item indices are
0..n_items-1; every categorical profile field reserves index 0 for "unknown".
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Numbers bucketed into categorical fields; their edges are fitted on training users.
NUMERIC_PROFILE_FIELDS = ("age", "income")


@dataclass
class FeatureSpec:
    user_ids: list[str]
    item_ids: list[str]
    categories: list[str]
    # Categorical vocabularies (index 0 = unknown, so a value's index is position + 1).
    profile_vocab: dict[str, list[str]] = field(default_factory=dict)
    # Bucket edges for numeric profile fields (bucket index = bisect + 1, 0 = unknown).
    profile_edges: dict[str, list[float]] = field(default_factory=dict)
    price_edges: list[float] = field(default_factory=list)
    max_history: int = 50

    # -- derived lookups (not serialised) --
    def __post_init__(self) -> None:
        self._user_index = {u: i + 1 for i, u in enumerate(self.user_ids)}
        self._item_index = {it: i for i, it in enumerate(self.item_ids)}
        self._category_index = {c: i for i, c in enumerate(self.categories)}
        self._vocab_index = {f: {v: i + 1 for i, v in enumerate(vs)} for f, vs in self.profile_vocab.items()}

    @property
    def profile_fields(self) -> list[str]:
        """Field order of the model's profile input: categorical fields, then bucketed numbers."""
        return list(self.profile_vocab) + list(self.profile_edges)

    @property
    def profile_cardinalities(self) -> list[int]:
        return [len(v) + 1 for v in self.profile_vocab.values()] + [
            len(e) + 2 for e in self.profile_edges.values()
        ]

    @property
    def n_price_buckets(self) -> int:
        return len(self.price_edges) + 2  # 0 = unknown price

    def user_index(self, user_id: str) -> int:
        """Model index of a user id; 0 when the id is unknown."""
        return self._user_index.get(user_id, 0)

    def item_index(self, item_id: str) -> int | None:
        return self._item_index.get(item_id)

    def category_index(self, category: str) -> int | None:
        return self._category_index.get(category)

    def encode_profile(self, profile: Mapping[str, Any]) -> list[int]:
        """One index per field of `profile_fields`; missing or unseen values map to 0."""
        out: list[int] = []
        for name, index in self._vocab_index.items():
            value = profile.get(name)
            out.append(index.get(str(value), 0) if value is not None else 0)
        for name, edges in self.profile_edges.items():
            out.append(bucketize(profile.get(name), edges))
        return out

    def encode_price(self, price: float | None) -> int:
        return bucketize(price, self.price_edges)

    def encode_interests(self, categories: Sequence[str]) -> list[float]:
        """Normalised multi-hot over the catalogue's categories; unknown names are ignored."""
        vec = [0.0] * len(self.categories)
        hits = [self._category_index[c] for c in categories if c in self._category_index]
        for i in hits:
            vec[i] = 1.0 / len(hits)
        return vec

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls(**json.loads(text))


def bucketize(value: Any, edges: Sequence[float]) -> int:
    """1 + the bucket of `value` among sorted `edges`; 0 when missing or not a number."""
    if value is None:
        return 0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    if math.isnan(number):
        return 0
    return bisect.bisect_right(list(edges), number) + 1


def quantile_edges(values: Sequence[float], n_buckets: int) -> list[float]:
    """Distinct inner quantile edges of `values` for at most `n_buckets` buckets."""
    clean = sorted(v for v in values if v is not None and not math.isnan(v))
    if not clean or n_buckets < 2:
        return []
    edges = {clean[min(len(clean) - 1, int(len(clean) * q / n_buckets))] for q in range(1, n_buckets)}
    return sorted(edges)
