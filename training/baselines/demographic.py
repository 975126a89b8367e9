"""Demographic popularity: the most popular items among training users with the same profile.

Users are grouped by a few profile attributes (age band, gender, occupation, ...). A group's item
scores are shrunk towards global popularity, so a small group does not get noisy tops:

    score(i | g) = (users_in_g_with_i + m * global_share_i) / (users_in_g + m)

It needs nothing but the profile, so it also ranks for cold users (no training rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from training.evaluation.recommender import TrainData

# MovieLens' own age bands; a reasonable life-stage split for other data sets too.
AGE_EDGES = (18, 25, 35, 45, 50, 56)
DEFAULT_ATTRIBUTES = ("gender", "age")


def profile_keys(users: pd.DataFrame, attributes: Sequence[str]) -> np.ndarray:
    """One string key per user combining the chosen attributes; missing values become '?'."""
    parts: list[pd.Series] = []
    for name in attributes:
        if name not in users.columns:
            parts.append(pd.Series(["?"] * len(users), index=users.index))
            continue
        column = users[name]
        if name == "age":
            ages = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            bands = np.searchsorted(np.asarray(AGE_EDGES), ages, side="right").astype(str)
            parts.append(pd.Series(np.where(np.isnan(ages), "?", bands), index=users.index))
        else:
            parts.append(column.astype("string").fillna("?").astype(str))
    if not parts:
        return np.full(len(users), "all", dtype=object)
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + "|" + part
    return keys.to_numpy(dtype=object)


class DemographicPopular:
    def __init__(self, attributes: Sequence[str] = DEFAULT_ATTRIBUTES, shrinkage: float = 10.0) -> None:
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
        self.attributes = tuple(attributes)
        self.shrinkage = shrinkage
        self._user_group: np.ndarray | None = None
        self._group_scores: torch.Tensor | None = None

    def fit(self, train: TrainData) -> None:
        keys = profile_keys(train.users, self.attributes)
        groups, user_group = np.unique(keys, return_inverse=True)
        seen = (train.matrix > 0).astype(np.float64).tocsr()
        active = np.diff(seen.indptr) > 0  # cold users have no rows and must not dilute groups
        global_share = np.asarray(seen.sum(axis=0)).ravel() / max(int(active.sum()), 1)
        scores = np.empty((len(groups), train.n_items), dtype=np.float32)
        for g in range(len(groups)):
            members = np.flatnonzero((user_group == g) & active)
            counts = np.asarray(seen[members].sum(axis=0)).ravel()
            scores[g] = (counts + self.shrinkage * global_share) / (len(members) + self.shrinkage + 1e-12)
        self._user_group = user_group
        self._group_scores = torch.from_numpy(scores)

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._user_group is None or self._group_scores is None:
            raise RuntimeError("DemographicPopular.score() called before fit()")
        groups = torch.from_numpy(self._user_group[np.asarray(user_indices)].astype(np.int64))
        return self._group_scores[groups]
