"""Segment popularity, as the seeds do it: K-Means segments on RFM + demographics, and each
user is recommended the most popular training items of their segment.

Features per user: log1p of recency (days), frequency and monetary value from
`training.data.rfm.rfm_features` on the training positives (only what is known at training
time: held-out interactions would leak through recency), age, and one-hot gender and
occupation; all standardised so no single feature dominates the K-Means distances.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans

from training.data.rfm import rfm_features
from training.evaluation.recommender import TrainData

CATEGORICAL_PROFILE = ("gender", "occupation")


def segment_features(train: TrainData) -> np.ndarray:
    """Standardised [n_users, n_features] matrix of RFM + demographic features."""
    # Positives carry no event type; none is a purchase, so frequency counts positives.
    positives = train.interactions.assign(event="interaction")
    rfm = rfm_features(positives, train.items).reindex(train.user_ids)
    columns: list[np.ndarray] = [
        np.log1p(rfm[name].to_numpy(dtype=float, na_value=np.nan).clip(min=0))
        for name in ("recency_days", "frequency", "monetary")
    ]
    if "age" in train.users.columns:
        columns.append(
            pd.to_numeric(train.users["age"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        )
    for name in CATEGORICAL_PROFILE:
        if name in train.users.columns:
            dummies = pd.get_dummies(train.users[name].astype("string").fillna("?"), dtype=float)
            columns.extend(dummies.to_numpy().T)
    features = np.column_stack(columns)
    # Users missing a value (e.g. no purchases, so no monetary) get the column median.
    medians = np.nanmedian(np.where(np.isfinite(features), features, np.nan), axis=0)
    features = np.where(np.isfinite(features), features, np.nan_to_num(medians))
    std = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)


class SegmentPopular:
    def __init__(self, n_segments: int = 8, seed: int = 0) -> None:
        if n_segments < 1:
            raise ValueError(f"n_segments must be >= 1, got {n_segments}")
        self.n_segments = n_segments
        self.seed = seed
        self._labels: np.ndarray | None = None
        self._segment_scores: torch.Tensor | None = None

    def fit(self, train: TrainData) -> None:
        features = segment_features(train)
        n_segments = min(self.n_segments, train.n_users)
        kmeans = KMeans(n_clusters=n_segments, n_init=4, random_state=self.seed)
        labels = kmeans.fit_predict(features)
        seen = (train.matrix > 0).astype(np.float64).tocsr()
        global_popularity = np.asarray(seen.sum(axis=0)).ravel()
        # Global popularity, scaled below one count, only breaks ties inside a segment.
        tie_break = global_popularity / (global_popularity.max() + 1.0)
        scores = np.empty((n_segments, train.n_items), dtype=np.float32)
        for segment in range(n_segments):
            scores[segment] = np.asarray(seen[labels == segment].sum(axis=0)).ravel() + tie_break
        self._labels = labels
        self._segment_scores = torch.from_numpy(scores)

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._labels is None or self._segment_scores is None:
            raise RuntimeError("SegmentPopular.score() called before fit()")
        return self._segment_scores[torch.from_numpy(self._labels[np.asarray(user_indices)].astype(np.int64))]
