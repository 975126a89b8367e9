"""From canonical tables to model inputs: feature spec, item features, user tables and batches.

    spec = build_feature_spec(ds, split.train, max_history=50)
    items = build_item_features(ds, spec, text_cache_dir)            # item-tower buffers
    table = build_user_table(spec, ds.users, split.train)            # training users, as tensors
    batch = table.batch(torch.tensor([spec.user_index("u1")]), item_categories)

Histories keep each user's most recent `max_history` positives. Interests are the category
distribution of a user's history, computed from the same (possibly dropped-out) history the
tower sees, so a training row never leaks its target item's categories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from embeddings.features import NUMERIC_PROFILE_FIELDS, FeatureSpec, quantile_edges
from embeddings.towers import ItemFeatures, UserBatch, interests_from_history
from explainrec.errors import DataError
from training.data.schema import Dataset
from training.text import TEXT_DIM, embed_texts

# Categorical profile fields the user tower may read; anything else (e.g. the demo shop's
# planted_segment ground truth) never becomes a feature.
CATEGORICAL_PROFILE_FIELDS = ("gender", "occupation", "location")
# Rare values share the "unknown" index: an embedding seen by two users learns only noise.
MIN_VALUE_COUNT = 3


def as_category_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def build_feature_spec(
    ds: Dataset,
    train: pd.DataFrame,
    max_history: int = 50,
    price_buckets: int = 8,
    numeric_buckets: int = 6,
) -> FeatureSpec:
    """Vocabularies and bucket edges fitted on training data only (valid/test never leak in)."""
    if ds.items.empty:
        raise DataError(f"data set {ds.name!r} has no items")
    user_ids = ds.users["user_id"].astype(str).tolist()
    item_ids = ds.items["item_id"].astype(str).tolist()
    categories = sorted({c for cats in ds.items["categories"] for c in as_category_list(cats)})
    train_users = set(train["user_id"].astype(str))
    seen = ds.users[ds.users["user_id"].astype(str).isin(train_users)]

    vocab: dict[str, list[str]] = {}
    for name in CATEGORICAL_PROFILE_FIELDS:
        if name in seen.columns:
            counts = seen[name].dropna().astype(str).value_counts()
            values = sorted(counts[counts >= MIN_VALUE_COUNT].index)
            if values:
                vocab[name] = values
    edges: dict[str, list[float]] = {}
    for name in NUMERIC_PROFILE_FIELDS:
        if name in seen.columns:
            numbers = pd.to_numeric(seen[name], errors="coerce").dropna().astype(float).tolist()
            if numbers:
                edges[name] = quantile_edges(numbers, numeric_buckets)
    price_edges: list[float] = []
    if "price" in ds.items.columns:
        prices = pd.to_numeric(ds.items["price"], errors="coerce").dropna().astype(float).tolist()
        price_edges = quantile_edges(prices, price_buckets)
    return FeatureSpec(
        user_ids=user_ids,
        item_ids=item_ids,
        categories=categories,
        profile_vocab=vocab,
        profile_edges=edges,
        price_edges=price_edges,
        max_history=max_history,
    )


def item_texts(items: pd.DataFrame) -> list[str]:
    titles = items["title"].fillna("").astype(str)
    if "description" in items.columns:
        desc = items["description"].fillna("").astype(str)
        return [f"{t}. {d}" if d else t for t, d in zip(titles, desc, strict=True)]
    return titles.tolist()


def build_item_features(
    ds: Dataset, spec: FeatureSpec, text_cache_dir: Path | None = None, use_text: bool = True
) -> ItemFeatures:
    items = ds.items.set_index(ds.items["item_id"].astype(str)).loc[spec.item_ids]
    multi_hot = torch.zeros((len(spec.item_ids), len(spec.categories)))
    for row, cats in enumerate(items["categories"]):
        for cat in as_category_list(cats):
            col = spec.category_index(cat)
            if col is not None:
                multi_hot[row, col] = 1.0
    prices = items["price"].tolist() if "price" in items.columns else [None] * len(items)
    price_bucket = torch.tensor([spec.encode_price(p) for p in prices], dtype=torch.long)
    if use_text:
        text = torch.from_numpy(embed_texts(item_texts(items), text_cache_dir))
    else:
        text = torch.zeros((len(spec.item_ids), 0))
    return ItemFeatures(categories=multi_hot, price_bucket=price_bucket, text=text)


def text_dim(features: ItemFeatures) -> int:
    return int(features.text.shape[1]) if features.text.ndim == 2 else TEXT_DIM


def recent_histories(spec: FeatureSpec, history: pd.DataFrame) -> dict[str, list[int]]:
    """user id -> item indices of its most recent `max_history` positives, oldest first."""
    if history.empty or spec.max_history == 0:
        return {}
    frame = history[["user_id", "item_id", "timestamp"]].copy()
    frame["item_idx"] = frame["item_id"].astype(str).map(spec._item_index)
    frame = frame.dropna(subset=["item_idx"])
    frame = frame.sort_values(["user_id", "timestamp"], kind="stable")
    frame = frame.groupby("user_id", sort=False).tail(spec.max_history)
    return {str(u): g.astype(int).tolist() for u, g in frame.groupby("user_id", sort=False)["item_idx"]}


def profile_rows(spec: FeatureSpec, users: pd.DataFrame, user_ids: Sequence[str]) -> Tensor:
    """[len(user_ids), n_fields] encoded profiles; users missing from `users` are all-unknown."""
    by_id = users.set_index(users["user_id"].astype(str))
    by_id = by_id[~by_id.index.duplicated()]
    records = by_id.reindex(list(user_ids)).to_dict("records")
    clean = [{str(k): v for k, v in r.items() if not _is_missing(v)} for r in records]
    return torch.tensor([spec.encode_profile(r) for r in clean], dtype=torch.long).reshape(
        len(user_ids), len(spec.profile_fields)
    )


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def pad_histories(histories: Sequence[Sequence[int]], length: int) -> tuple[Tensor, Tensor]:
    """Right-aligned padding to [n, length] (most recent last) plus the real-item mask."""
    out = torch.zeros((len(histories), length), dtype=torch.long)
    mask = torch.zeros((len(histories), length), dtype=torch.bool)
    for row, items in enumerate(histories):
        kept = list(items)[-length:] if length else []
        if kept:
            out[row, length - len(kept) :] = torch.tensor(kept, dtype=torch.long)
            mask[row, length - len(kept) :] = True
    return out, mask


@dataclass
class UserTable:
    """Per-user tensors indexed by model user index (row 0 = unknown user, all empty)."""

    profile: Tensor  # [n_users + 1, n_fields] long
    history: Tensor  # [n_users + 1, max_history] long
    history_mask: Tensor  # [n_users + 1, max_history] bool

    def batch(self, user_idx: Tensor, item_categories: Tensor, use_ids: bool = True) -> UserBatch:
        history, mask = self.history[user_idx], self.history_mask[user_idx]
        return UserBatch(
            user_idx=user_idx if use_ids else torch.zeros_like(user_idx),
            profile=self.profile[user_idx],
            interests=interests_from_history(item_categories, history, mask),
            history=history,
            history_mask=mask,
        )


def build_user_table(spec: FeatureSpec, users: pd.DataFrame, history: pd.DataFrame) -> UserTable:
    ids = ["", *spec.user_ids]
    profile = profile_rows(spec, users, ids)
    profile[0] = 0
    recent = recent_histories(spec, history)
    padded, mask = pad_histories([recent.get(u, []) for u in ids], spec.max_history)
    return UserTable(profile=profile, history=padded, history_mask=mask)


def user_batch(
    spec: FeatureSpec,
    users_frame: pd.DataFrame,
    histories: Sequence[Sequence[str]],
    item_categories: Tensor,
    interests: Sequence[Iterable[str]] | None = None,
    use_ids: bool = True,
) -> UserBatch:
    """A batch for arbitrary users given as strings: profile rows (`users_frame`, one per user,
    with `user_id`), history item ids (oldest first) and optional interest categories, which
    replace the history's category distribution (the profile-form path of a new user)."""
    user_ids = users_frame["user_id"].astype(str).tolist()
    if len(histories) != len(user_ids):
        raise DataError(f"user_batch: {len(user_ids)} users but {len(histories)} histories")
    idx = [[i for i in (spec.item_index(str(it)) for it in h) if i is not None] for h in histories]
    history, mask = pad_histories(idx, spec.max_history)
    if interests is None:
        interest_t = interests_from_history(item_categories, history, mask)
    else:
        interest_t = torch.tensor([spec.encode_interests(list(c)) for c in interests], dtype=torch.float)
        interest_t = interest_t.reshape(len(user_ids), len(spec.categories))
    user_idx = [spec.user_index(u) if use_ids else 0 for u in user_ids]
    return UserBatch(
        user_idx=torch.tensor(user_idx, dtype=torch.long),
        profile=profile_rows(spec, users_frame, user_ids),
        interests=interest_t,
        history=history,
        history_mask=mask,
    )
