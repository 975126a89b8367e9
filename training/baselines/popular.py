"""MostPopular: every user gets the items with the most training users."""

from __future__ import annotations

import numpy as np
import torch

from training.evaluation.recommender import TrainData


class MostPopular:
    """Scores each item by its number of training users, the same for every user."""

    def __init__(self) -> None:
        self._popularity: torch.Tensor | None = None

    def fit(self, train: TrainData) -> None:
        self._popularity = torch.from_numpy(train.item_popularity().astype(np.float32))

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._popularity is None:
            raise RuntimeError("MostPopular.score() called before fit()")
        return self._popularity.unsqueeze(0).expand(len(user_indices), -1).clone()
