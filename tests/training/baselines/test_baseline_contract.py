"""The contract every baseline meets: output shape, determinism given a seed, and a sanity
ranking on a planted checkerboard (even users like even items, odd users odd items)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from training.baselines.demographic import DemographicPopular
from training.baselines.ease import EASE
from training.baselines.implicit_models import BPR, IALS
from training.baselines.itemknn import ItemKNN
from training.baselines.lightfm_model import LightFMWarp
from training.baselines.popular import MostPopular
from training.baselines.segment import SegmentPopular
from training.evaluation.metrics import top_k
from training.evaluation.recommender import Recommender, TrainData

N_USERS, N_ITEMS = 40, 30


def checkerboard(seed: int = 0) -> TrainData:
    """Each user has 10 of the 15 items of their parity; the profile says the parity too
    (gender, occupation, age band), so demographic and segment models can find it as well."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for user in range(N_USERS):
        same_parity = np.arange(user % 2, N_ITEMS, 2)
        for item in rng.choice(same_parity, size=10, replace=False):
            rows.append(user)
            cols.append(int(item))
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))
    user_ids = [f"u{u}" for u in range(N_USERS)]
    item_ids = [f"i{i}" for i in range(N_ITEMS)]
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "gender": ["F" if u % 2 == 0 else "M" for u in range(N_USERS)],
            "occupation": ["artist" if u % 2 == 0 else "engineer" for u in range(N_USERS)],
            "age": pd.array([22 if u % 2 == 0 else 52 for u in range(N_USERS)], dtype="Int64"),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": [f"Item {i}" for i in range(N_ITEMS)],
            "categories": [["Even"] if i % 2 == 0 else ["Odd"] for i in range(N_ITEMS)],
        }
    )
    start = pd.Timestamp("2024-01-01", tz="UTC")
    interactions = pd.DataFrame(
        {
            "user_id": [user_ids[r] for r in rows],
            "item_id": [item_ids[c] for c in cols],
            "timestamp": [start + pd.Timedelta(hours=k) for k in range(len(rows))],
            "weight": 1.0,
        }
    )
    return TrainData(matrix, user_ids, item_ids, users, items, interactions)


BASELINES: dict[str, Callable[[int], Recommender]] = {
    "segment-popular": lambda seed: SegmentPopular(n_segments=4, seed=seed),
    "demographic-popular": lambda seed: DemographicPopular(attributes=("gender",), shrinkage=1.0),
    "itemknn": lambda seed: ItemKNN(k=10, shrink=1.0),
    "ease": lambda seed: EASE(l2=10.0),
    "ials": lambda seed: IALS(factors=4, regularization=1.0, alpha=5.0, iterations=10, seed=seed),
    "bpr": lambda seed: BPR(factors=8, learning_rate=0.05, iterations=200, seed=seed),
    "lightfm": lambda seed: LightFMWarp(no_components=8, learning_rate=0.05, epochs=20, seed=seed),
}
ALL = {"popular": lambda seed: MostPopular(), **BASELINES}


@pytest.fixture(scope="module")
def train() -> TrainData:
    return checkerboard()


@pytest.mark.parametrize("name", sorted(ALL))
def test_scores_have_one_row_per_user_and_one_column_per_item(name: str, train: TrainData) -> None:
    model = ALL[name](0)
    assert isinstance(model, Recommender)
    model.fit(train)
    users = np.array([3, 0, 7])
    scores = model.score(users)
    assert isinstance(scores, torch.Tensor)
    assert scores.dtype == torch.float32
    assert tuple(scores.shape) == (3, N_ITEMS)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", sorted(ALL))
def test_same_seed_gives_same_scores(name: str, train: TrainData) -> None:
    users = np.arange(N_USERS)
    first, second = ALL[name](7), ALL[name](7)
    first.fit(train)
    second.fit(train)
    assert torch.equal(first.score(users), second.score(users))


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_recovers_the_checkerboard(name: str, train: TrainData) -> None:
    model = BASELINES[name](0)
    model.fit(train)
    users = np.arange(N_USERS)
    # The 5 unseen items of the user's parity should fill the top 5.
    top = top_k(model.score(users), train.matrix, 5).numpy()
    same_parity = (top % 2) == (users[:, None] % 2)
    assert same_parity.mean() >= 0.9, f"{name}: only {same_parity.mean():.2f} of the top-5 match the parity"


def test_most_popular_ranks_by_training_users(train: TrainData) -> None:
    model = MostPopular()
    model.fit(train)
    popularity = np.asarray(train.matrix.sum(axis=0)).ravel()
    scores = model.score(np.array([0, 1]))
    assert torch.equal(scores[0], scores[1])
    assert int(scores[0].argmax()) in set(np.flatnonzero(popularity == popularity.max()))


def test_demographic_popular_falls_back_to_global_for_unseen_profiles(train: TrainData) -> None:
    cold_users = train.users.copy()
    cold_users.loc[0, "gender"] = "X"
    # User 0 becomes a cold user: no training rows, and a profile no training user has.
    matrix = sp.vstack([sp.csr_matrix((1, N_ITEMS), dtype=np.float32), train.matrix[1:]]).tocsr()
    data = TrainData(matrix, train.user_ids, train.item_ids, cold_users, train.items, train.interactions)
    model = DemographicPopular(attributes=("gender",), shrinkage=5.0)
    model.fit(data)
    unseen = model.score(np.array([0]))[0].numpy()
    global_share = np.asarray((data.matrix[1:] > 0).sum(axis=0)).ravel() / (N_USERS - 1)
    assert np.allclose(unseen, global_share, atol=1e-6)


def test_invalid_hyper_parameters_are_rejected() -> None:
    with pytest.raises(ValueError):
        EASE(l2=0.0)
    with pytest.raises(ValueError):
        ItemKNN(k=0)
    with pytest.raises(ValueError):
        SegmentPopular(n_segments=0)
    with pytest.raises(ValueError):
        DemographicPopular(shrinkage=-1.0)
