"""LightFM with WARP loss and item features (identity + categories), the seeds' hybrid.

Scores are user representation . item representation + item bias, computed for all items at
once from LightFM's learned representations instead of per-pair `predict` calls.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from lightfm import LightFM

from training.evaluation.recommender import TrainData


def item_feature_matrix(train: TrainData) -> sp.csr_matrix:
    """[n_items, n_items + n_categories]: each item's id feature plus its categories, rows L1-normalised."""
    categories = train.items.get("categories")
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    n_items = train.n_items
    if categories is not None:
        for row, cats in enumerate(categories):
            for cat in list(cats) if cats is not None else []:
                rows.append(row)
                cols.append(n_items + vocab.setdefault(str(cat), len(vocab)))
    rows = list(range(n_items)) + rows
    cols = list(range(n_items)) + cols
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_items, n_items + len(vocab))
    )
    # LightFM recommends normalised rows so items with many categories are not louder.
    row_sums = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / row_sums) @ matrix, dtype=np.float32)


class LightFMWarp:
    def __init__(
        self,
        no_components: int = 64,
        learning_rate: float = 0.05,
        item_alpha: float = 1e-6,
        epochs: int = 30,
        max_sampled: int = 10,
        seed: int = 0,
    ) -> None:
        self.params = {
            "no_components": no_components,
            "learning_rate": learning_rate,
            "item_alpha": item_alpha,
            "epochs": epochs,
            "max_sampled": max_sampled,
        }
        self.seed = seed
        self._user_repr: torch.Tensor | None = None
        self._item_repr: torch.Tensor | None = None
        self._item_bias: torch.Tensor | None = None

    def fit(self, train: TrainData) -> None:
        features = item_feature_matrix(train)
        model = LightFM(
            loss="warp",
            no_components=int(self.params["no_components"]),
            learning_rate=float(self.params["learning_rate"]),
            item_alpha=float(self.params["item_alpha"]),
            max_sampled=int(self.params["max_sampled"]),
            random_state=np.random.RandomState(self.seed),
        )
        model.fit(
            train.binary.tocoo(), item_features=features, epochs=int(self.params["epochs"]), num_threads=1
        )
        item_bias, item_repr = model.get_item_representations(features)
        _, user_repr = model.get_user_representations()
        self._user_repr = torch.from_numpy(np.asarray(user_repr, dtype=np.float32))
        self._item_repr = torch.from_numpy(np.asarray(item_repr, dtype=np.float32))
        self._item_bias = torch.from_numpy(np.asarray(item_bias, dtype=np.float32))

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._user_repr is None or self._item_repr is None or self._item_bias is None:
            raise RuntimeError("LightFMWarp.score() called before fit()")
        users = self._user_repr[torch.from_numpy(np.asarray(user_indices, dtype=np.int64))]
        return users @ self._item_repr.T + self._item_bias
