"""Index tensors for Lightning: (user, positive item) pairs to train on, users to validate.

Everything a step needs beyond indices lives in the module's buffers, so loaders stay cheap
and Lightning's distributed sampler can shard them across DDP processes unchanged.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from embeddings.features import FeatureSpec
from explainrec.errors import DataError


def pair_indices(spec: FeatureSpec, frame: pd.DataFrame) -> Tensor:
    """[n, 2] long (model user index, item index) for the rows of a positives frame."""
    users = frame["user_id"].astype(str).map(spec.user_index).to_numpy(dtype=np.int64)
    items = frame["item_id"].astype(str).map(lambda i: spec.item_index(i)).to_numpy(dtype=object)
    known = (users > 0) & pd.notna(items)
    if not known.any():
        return torch.zeros((0, 2), dtype=torch.long)
    return torch.from_numpy(np.stack([users[known], items[known].astype(np.int64)], axis=1))


def csr(pairs: Tensor, n_rows: int) -> tuple[Tensor, Tensor]:
    """(indptr, indices) of a boolean [n_rows, n_items] matrix holding the given pairs."""
    if pairs.numel() == 0:
        return torch.zeros(n_rows + 1, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    pairs = torch.unique(pairs, dim=0)  # sorted by row, then column
    counts = torch.bincount(pairs[:, 0], minlength=n_rows)
    indptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    return indptr, pairs[:, 1].contiguous()


class TwoTowerDataModule(L.LightningDataModule):
    def __init__(
        self,
        train_pairs: Tensor,
        val_users: Tensor,
        batch_size: int,
        num_workers: int = 0,
        val_batch_size: int = 256,
    ) -> None:
        super().__init__()
        if train_pairs.shape[0] == 0:
            raise DataError("no training positives: check the data set and the positive rule")
        if val_users.numel() == 0:
            raise DataError("no validation users: the split left the validation set empty")
        self.train_pairs, self.val_users = train_pairs, val_users
        self.batch_size = min(batch_size, train_pairs.shape[0])
        self.num_workers, self.val_batch_size = num_workers, val_batch_size

    def train_dataloader(self) -> DataLoader:
        # drop_last keeps in-batch softmax sizes equal; a partial batch has fewer negatives.
        drop_last = self.train_pairs.shape[0] >= 2 * self.batch_size
        return DataLoader(
            TensorDataset(self.train_pairs),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            TensorDataset(self.val_users),
            batch_size=self.val_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )


def validation_users(valid_pairs: Tensor, limit: int | None, seed: int) -> Tensor:
    users = torch.unique(valid_pairs[:, 0]) if valid_pairs.numel() else torch.zeros(0, dtype=torch.long)
    if limit is not None and users.numel() > limit:
        generator = torch.Generator().manual_seed(seed)
        users = users[torch.randperm(users.numel(), generator=generator)[:limit]].sort().values
    return users
