"""The one interface every evaluated model implements, and the training data it is given.

A model only learns (`fit`) and scores (`score`). Masking already-seen items and taking the
top-K is the harness's job, so no model can get it subtly wrong or differently from another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch


@dataclass(frozen=True)
class TrainData:
    """Training positives in contiguous index space, plus the side tables some models read.

    Row i of `matrix` and of `users` is `user_ids[i]`; column j of `matrix` and row j of
    `items` is `item_ids[j]`. Users without training rows (cold users) still have a row.
    """

    matrix: sp.csr_matrix  # [n_users, n_items] float32, value = positive's weight
    user_ids: list[str]
    item_ids: list[str]
    users: pd.DataFrame  # canonical users table, aligned with user_ids
    items: pd.DataFrame  # canonical items table, aligned with item_ids
    # Training positives (user_id, item_id, timestamp, weight) for models that need times or ids.
    interactions: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        n_users, n_items = self.matrix.shape
        if n_users != len(self.user_ids) or n_items != len(self.item_ids):
            raise ValueError(
                f"matrix shape {self.matrix.shape} does not match {len(self.user_ids)} users "
                f"x {len(self.item_ids)} items"
            )
        if len(self.users) != n_users or len(self.items) != n_items:
            raise ValueError("users/items tables must be aligned with user_ids/item_ids")

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def binary(self) -> sp.csr_matrix:
        """The matrix with every stored positive set to 1 (most baselines ignore weights)."""
        out = self.matrix.copy().astype(np.float32)
        out.data[:] = 1.0
        return out

    def item_popularity(self) -> np.ndarray:
        """Number of training users per item, float64 [n_items]."""
        return np.asarray((self.matrix > 0).sum(axis=0), dtype=np.float64).ravel()


@runtime_checkable
class Recommender(Protocol):
    """A model under evaluation: learn from `TrainData`, then score every item for some users."""

    def fit(self, train: TrainData) -> None:
        """Learn from the training positives; called once per instance."""
        ...

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        """Float32 scores [len(user_indices), n_items], higher is better, no masking applied."""
        ...
