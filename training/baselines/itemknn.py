"""ItemKNN: cosine item-item similarity with shrinkage, pruned to each item's top-k neighbours.

sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink); a user's score for j sums sim(i, j)
over the user's training items i. Similarities are built in row blocks so memory stays
O(block * n_items) plus the sparse top-k result.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from training.evaluation.recommender import TrainData

_BLOCK = 1024


class ItemKNN:
    def __init__(self, k: int = 100, shrink: float = 10.0) -> None:
        if k < 1 or shrink < 0:
            raise ValueError(f"ItemKNN needs k >= 1 and shrink >= 0, got k={k}, shrink={shrink}")
        self.k = k
        self.shrink = shrink
        self._similarity: sp.csr_matrix | None = None
        self._user_items: sp.csr_matrix | None = None

    def fit(self, train: TrainData) -> None:
        x = train.binary.tocsc()
        n_items = x.shape[1]
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        k = min(self.k, max(n_items - 1, 1))
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for start in range(0, n_items, _BLOCK):
            stop = min(start + _BLOCK, n_items)
            overlap = (x[:, start:stop].T @ x).toarray()
            sim = overlap / (np.outer(norms[start:stop], norms) + self.shrink + 1e-12)
            sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
            # argpartition keeps the k largest per row without a full sort.
            neighbours = np.argpartition(-sim, kth=k - 1, axis=1)[:, :k]
            values = np.take_along_axis(sim, neighbours, axis=1)
            keep = values > 0
            rows.append(np.repeat(np.arange(start, stop), k)[keep.ravel()])
            cols.append(neighbours.ravel()[keep.ravel()])
            vals.append(values.ravel()[keep.ravel()])
        self._similarity = sp.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
        )
        self._user_items = train.binary

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._similarity is None or self._user_items is None:
            raise RuntimeError("ItemKNN.score() called before fit()")
        scores = (self._user_items[np.asarray(user_indices)] @ self._similarity).toarray()
        return torch.from_numpy(scores.astype(np.float32))
