"""EASE (Steck 2019): a closed-form item-item linear model with a zero diagonal.

B = I - P / diag(P) with P = (X^T X + lambda I)^-1; a user's scores are x_u B. Dense in the
number of items, which suits MovieLens-sized catalogues (tens of thousands of items at most).
"""

from __future__ import annotations

import numpy as np
import torch

from training.evaluation.recommender import TrainData


class EASE:
    def __init__(self, l2: float = 500.0) -> None:
        if l2 <= 0:
            raise ValueError(f"EASE l2 must be > 0, got {l2}")
        self.l2 = l2
        self._weights: torch.Tensor | None = None
        self._user_items: torch.Tensor | None = None

    def fit(self, train: TrainData) -> None:
        x = train.binary
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)
        np.fill_diagonal(weights, 0.0)
        self._weights = torch.from_numpy(weights.astype(np.float32))
        self._user_items = torch.from_numpy(x.toarray())

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._weights is None or self._user_items is None:
            raise RuntimeError("EASE.score() called before fit()")
        return self._user_items[torch.from_numpy(np.asarray(user_indices, dtype=np.int64))] @ self._weights
