"""The two-tower model (and its ids-only `mf` ablation) behind the harness's Recommender interface.

Training is `training.train.fit_two_tower` on the harness's own data set and split, so the
towers see exactly the positives every baseline sees; early stopping reads the validation
split, which tuning may use. Scores come back in the fitted model's item order and are
permuted into the harness's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from training.config import validate_config
from training.evaluation.data import EvalData
from training.evaluation.recommender import TrainData
from training.train import FittedTwoTower, fit_two_tower
from training.train_config import TrainConfig

# Far below any real score, but finite, so an item the towers never saw ranks last.
_UNSEEN_ITEM_SCORE = -1e9

# The `mf` ablation: learned user and item ids only, the towers' matrix-factorisation core.
IDS_ONLY_OVERRIDES: dict[str, Any] = {
    "model.use_user_id": True,
    "model.use_item_id": True,
    "model.use_content": False,
    "model.use_profile": False,
    "model.use_history": False,
    "model.user_id_dropout": 0.0,
    "model.similarity": "cosine",
    "model.wide": False,
    "features.use_text": False,
}


def configured(base: TrainConfig, overrides: Mapping[str, Any], seed: int) -> TrainConfig:
    """`base` with dotted-key `overrides` (e.g. {"optim.lr": 1e-3}) and `seed` applied, validated."""
    data = base.model_dump(mode="json")
    for dotted, value in {**overrides, "seed": seed}.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return validate_config(data, TrainConfig, f"two-tower config with {dict(overrides)}")


class TwoTowerRecommender:
    def __init__(
        self,
        data: EvalData,
        base: TrainConfig,
        params: Mapping[str, Any],
        seed: int = 0,
        ids_only: bool = False,
        progress: bool = False,
        text_cache_dir: Path | None = None,
    ) -> None:
        overrides = {**(IDS_ONLY_OVERRIDES if ids_only else {}), **params}
        self.config = configured(base, overrides, seed)
        self._data = data
        self._progress = progress
        self._text_cache_dir = text_cache_dir
        self._fitted: FittedTwoTower | None = None
        self._columns: torch.Tensor | None = None  # harness item j -> fitted column, -1 if unseen

    def fit(self, train: TrainData) -> None:
        if train.item_ids != self._data.train.item_ids or train.user_ids != self._data.train.user_ids:
            raise ValueError(
                "TwoTowerRecommender must be fitted on the TrainData of the EvalData it was built with"
            )
        # Checkpoints are only needed until the best one is loaded back into memory.
        with tempfile.TemporaryDirectory(prefix="explainrec-eval-") as work_dir:
            self._fitted = fit_two_tower(
                self.config,
                self._data.dataset,
                self._data.split,
                progress=self._progress,
                work_dir=Path(work_dir),
                text_cache_dir=self._text_cache_dir,
            )
        positions = pd.Index(self._fitted.item_ids).get_indexer(pd.Index(train.item_ids))
        self._columns = torch.from_numpy(positions.astype(np.int64))

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        if self._fitted is None or self._columns is None:
            raise RuntimeError("TwoTowerRecommender.score() called before fit()")
        user_ids = [self._data.train.user_ids[i] for i in np.asarray(user_indices)]
        raw = self._fitted.score_users(user_ids).to(torch.float32)
        known = self._columns >= 0
        out = torch.full((len(user_ids), len(self._columns)), _UNSEEN_ITEM_SCORE, dtype=torch.float32)
        out[:, known] = raw[:, self._columns[known]]
        return out
