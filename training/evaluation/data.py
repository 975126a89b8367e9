"""Turn a data set and its split into the index space the harness ranks in.

Every model is fitted on the training positives only. Validation ranks exclude each user's
training items; the test ranks exclude training AND validation items (both are known by the
time the test is run, and a model fitted on train alone would otherwise be punished for
ranking a user's validation items, which are real positives, above the test items).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from explainrec.errors import DataError
from training.data.schema import Dataset
from training.data.splits import Split
from training.evaluation.recommender import TrainData


@dataclass(frozen=True)
class EvalData:
    dataset: Dataset
    split: Split
    train: TrainData
    valid_targets: sp.csr_matrix  # [n_users, n_items] bool: validation positives
    test_targets: sp.csr_matrix  # test positives not already in train or valid
    valid_known: sp.csr_matrix  # items excluded from validation rankings (train)
    test_known: sp.csr_matrix  # items excluded from test rankings (train + valid)

    def counts(self) -> dict[str, int]:
        return {
            "train": len(self.split.train),
            "valid": len(self.split.valid),
            "test": len(self.split.test),
            "users": self.train.n_users,
            "items": self.train.n_items,
        }


def _matrix(
    frame: pd.DataFrame, user_index: pd.Index, item_index: pd.Index, name: str, weighted: bool = False
) -> sp.csr_matrix:
    frame = frame.assign(user_id=frame["user_id"].astype(str), item_id=frame["item_id"].astype(str))
    if weighted and "weight" in frame.columns:
        # A repeated (user, item) pair counts once, with its largest weight.
        frame = frame.groupby(["user_id", "item_id"], sort=False)["weight"].max().reset_index()
    rows = user_index.get_indexer(pd.Index(frame["user_id"]))
    cols = item_index.get_indexer(pd.Index(frame["item_id"]))
    if (rows < 0).any() or (cols < 0).any():
        bad = frame.loc[(rows < 0) | (cols < 0), ["user_id", "item_id"]].head(3).to_dict("records")
        raise DataError(f"{name} split has ids missing from the users/items tables, e.g. {bad}")
    if weighted and "weight" in frame.columns:
        values = frame["weight"].to_numpy(dtype=np.float32)
    else:
        values = np.ones(len(frame), dtype=np.float32)
    matrix = sp.coo_matrix((values, (rows, cols)), shape=(len(user_index), len(item_index))).tocsr()
    if not weighted:
        matrix.data[:] = 1.0  # duplicates were summed by the conversion
    return matrix


def _without(targets: sp.csr_matrix, known: sp.csr_matrix) -> sp.csr_matrix:
    """Targets minus the known items (a re-consumed item cannot be recommended again)."""
    out = (targets - targets.multiply(known > 0)).tocsr()
    out.eliminate_zeros()
    return out


def build_eval_data(ds: Dataset, split: Split) -> EvalData:
    """Index the split's positives over all users and items of the data set."""
    if ds.users.empty or ds.items.empty:
        raise DataError(f"data set {ds.name!r} has no users or no items to rank")
    users = ds.users.drop_duplicates("user_id").reset_index(drop=True)
    items = ds.items.drop_duplicates("item_id").reset_index(drop=True)
    user_index = pd.Index(users["user_id"].astype(str))
    item_index = pd.Index(items["item_id"].astype(str))
    for name, frame in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        if frame.empty:
            raise DataError(f"the {name} split of {ds.name!r} is empty; nothing to fit or evaluate")
    weights = _matrix(split.train, user_index, item_index, "train", weighted=True)
    train_binary = _matrix(split.train, user_index, item_index, "train")
    valid = _matrix(split.valid, user_index, item_index, "valid")
    test = _matrix(split.test, user_index, item_index, "test")
    train = TrainData(
        matrix=weights,
        user_ids=list(user_index),
        item_ids=list(item_index),
        users=users,
        items=items,
        interactions=split.train.reset_index(drop=True),
    )
    test_known = ((train_binary + valid) > 0).astype(np.float32).tocsr()
    return EvalData(
        dataset=ds,
        split=split,
        train=train,
        valid_targets=_without(valid, train_binary),
        test_targets=_without(test, test_known),
        valid_known=train_binary,
        test_known=test_known,
    )
