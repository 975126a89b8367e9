"""iALS and BPR from the `implicit` library, CPU builds, single-threaded for determinism.

Both learn user and item factors; a user's scores are the dot products with every item.
Users with no training rows get the zero vector (all-zero scores), which is what the
library's factors give them too.
"""

from __future__ import annotations

import numpy as np
import torch
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking

from training.evaluation.recommender import TrainData

# Two threads would halve fit time but make BPR's Hogwild updates order-dependent.
_THREADS = 1


class _FactorModel:
    def __init__(self) -> None:
        self._user_factors: torch.Tensor | None = None
        self._item_factors: torch.Tensor | None = None

    def _store(self, user_factors: np.ndarray, item_factors: np.ndarray) -> None:
        self._user_factors = torch.from_numpy(np.ascontiguousarray(user_factors, dtype=np.float32))
        self._item_factors = torch.from_numpy(np.ascontiguousarray(item_factors, dtype=np.float32))

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._user_factors is None or self._item_factors is None:
            raise RuntimeError(f"{type(self).__name__}.score() called before fit()")
        users = self._user_factors[torch.from_numpy(np.asarray(user_indices, dtype=np.int64))]
        return users @ self._item_factors.T


class IALS(_FactorModel):
    """Implicit ALS (Hu, Koren, Volinsky 2008); confidence = 1 + alpha * weight."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.params = {
            "factors": factors,
            "regularization": regularization,
            "alpha": alpha,
            "iterations": iterations,
        }
        self.seed = seed

    def fit(self, train: TrainData) -> None:
        model = AlternatingLeastSquares(
            factors=int(self.params["factors"]),
            regularization=float(self.params["regularization"]),
            alpha=float(self.params["alpha"]),
            iterations=int(self.params["iterations"]),
            num_threads=_THREADS,
            random_state=self.seed,
        )
        model.fit(train.binary, show_progress=False)
        self._store(model.user_factors, model.item_factors)


class BPR(_FactorModel):
    """Bayesian Personalised Ranking with matrix factorisation (item bias in the last factor)."""

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.params = {
            "factors": factors,
            "learning_rate": learning_rate,
            "regularization": regularization,
            "iterations": iterations,
        }
        self.seed = seed

    def fit(self, train: TrainData) -> None:
        model = BayesianPersonalizedRanking(
            factors=int(self.params["factors"]),
            learning_rate=float(self.params["learning_rate"]),
            regularization=float(self.params["regularization"]),
            iterations=int(self.params["iterations"]),
            num_threads=_THREADS,
            random_state=self.seed,
        )
        model.fit(train.binary, show_progress=False)
        self._store(model.user_factors, model.item_factors)
