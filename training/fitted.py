"""A fitted two-tower model in memory: the best checkpoint's towers plus user encoding.

`training.train.fit_two_tower` returns one; the evaluation harness scores users with it and
`training.train.train` exports its vectors into a bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from embeddings.features import FeatureSpec
from embeddings.towers import TwoTowerModel, UserBatch, interests_from_history
from training.features import pad_histories, profile_rows, recent_histories


@dataclass
class FittedTwoTower:
    """The best checkpoint's towers (CPU, eval mode) plus what is needed to encode users."""

    model: TwoTowerModel
    spec: FeatureSpec
    users: pd.DataFrame  # canonical users table (profiles of every user, cold ones included)
    train: pd.DataFrame  # training positives, the default history
    val_metrics: dict[str, float]
    fit_seconds: float
    best_checkpoint: Path | None
    is_global_zero: bool = True
    history_log: list[dict[str, float]] = field(default_factory=list)

    @property
    def item_ids(self) -> list[str]:
        return list(self.spec.item_ids)

    @torch.no_grad()
    def item_vectors(self) -> np.ndarray:
        return self.model.all_item_vectors().float().numpy()

    @torch.no_grad()
    def user_vectors(
        self, user_ids: Sequence[str], history: pd.DataFrame | None = None, batch_size: int = 1024
    ) -> np.ndarray:
        """[len(user_ids), dim] user-tower vectors; users the model never trained on are encoded
        from their profile and the given history only."""
        frame = self.train if history is None else history
        recent = recent_histories(self.spec, frame)
        item_vectors = self.model.all_item_vectors()
        out = []
        for start in range(0, len(user_ids), batch_size):
            ids = [str(u) for u in user_ids[start : start + batch_size]]
            hist, mask = pad_histories([recent.get(u, []) for u in ids], self.spec.max_history)
            batch_idx = torch.tensor([self.spec.user_index(u) for u in ids], dtype=torch.long)
            batch = UserBatch(
                user_idx=batch_idx,
                profile=profile_rows(self.spec, self.users, ids),
                interests=interests_from_history(self.model.item_categories, hist, mask),
                history=hist,
                history_mask=mask,
            )
            out.append(self.model.encode_users(batch, item_vectors=item_vectors))
        if not out:
            return np.zeros((0, self.model.config.dim), dtype=np.float32)
        return torch.cat(out).float().numpy()

    @torch.no_grad()
    def score_users(self, user_ids: Sequence[str], history: pd.DataFrame | None = None) -> torch.Tensor:
        """[len(user_ids), n_items] cosine scores, columns in `item_ids` order, nothing masked."""
        users = torch.from_numpy(self.user_vectors(user_ids, history))
        return users @ torch.from_numpy(self.item_vectors()).T
