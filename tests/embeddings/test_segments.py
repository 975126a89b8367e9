"""Segments recover planted structure; profiles, PCA map and assignment of new users."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from embeddings.bundle import Bundle
from embeddings.segments import Segmenter, agreement, segment_rfm, segment_users
from explainrec.errors import ConfigError, DataError


def _blobs(n_per: int, k: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 3
    truth = np.repeat(np.arange(k), n_per)
    x = centres[truth] + rng.normal(size=(len(truth), dim))
    return x.astype(np.float32), truth


@pytest.mark.parametrize("method", ["kmeans", "ward"])
def test_recovers_planted_clusters(method: str) -> None:
    x, truth = _blobs(80, 4, 12, seed=0)
    seg = Segmenter(method=method, k_range=(2, 8)).fit(x)  # type: ignore[arg-type]
    assert seg.k == 4
    assert agreement(seg.labels_, truth)["ari"] > 0.95
    assert [s.k for s in seg.scores] == list(range(2, 9))
    assert all(np.isfinite([s.inertia, s.davies_bouldin, s.silhouette]).all() for s in seg.scores)
    chosen = max(seg.scores, key=lambda s: s.silhouette)
    assert chosen.k == seg.k
    inertias = [s.inertia for s in seg.scores]
    assert inertias[0] > inertias[2], "inertia falls as k grows towards the planted k"
    # New points from the same centres land in their cluster's segment.
    fresh, fresh_truth = _blobs(10, 4, 12, seed=0)
    assert agreement(seg.assign(fresh), fresh_truth)["ari"] > 0.9


def test_segmenter_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="need more users"):
        Segmenter(k_range=(2, 5)).fit(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ConfigError, match="unknown segmentation method"):
        Segmenter(method="dbscan").fit(np.zeros((20, 4), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="finite"):
        Segmenter().fit(np.full((20, 4), np.nan, dtype=np.float32))


def test_rfm_segmentation_finds_spending_groups() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1, 2], 50)
    rfm = pd.DataFrame(
        {
            "recency_days": np.array([3.0, 60.0, 150.0])[groups] * rng.uniform(0.8, 1.2, 150),
            "frequency": np.array([40.0, 8.0, 1.0])[groups] * rng.uniform(0.8, 1.2, 150),
            "monetary": np.array([2000.0, 200.0, 15.0])[groups] * rng.uniform(0.8, 1.2, 150),
        },
        index=[f"u{i}" for i in range(150)],
    )
    result = segment_rfm(rfm)
    assert result.k == 3 and list(result.labels.index) == list(rfm.index)
    assert agreement(result.labels.to_numpy(), groups)["ari"] > 0.95


def test_toy_bundle_segments_follow_planted_tastes(toy_bundle: Bundle) -> None:
    seg = toy_bundle.segments
    taste = np.array([int(u[1:]) % 2 for u in toy_bundle.feature_spec.user_ids])
    assert seg.k == 2 and agreement(seg.labels, taste)["ari"] == 1.0
    assert sum(p.size for p in seg.profiles) == 20 and abs(sum(p.share for p in seg.profiles) - 1) < 1e-6
    names = {p.name for p in seg.profiles}
    assert len(names) == 2
    for p in seg.profiles:
        members = taste[seg.labels == p.segment]
        liked = {"Books", "Games"} if members[0] == 0 else {"Garden", "Kitchen"}
        assert {c["category"] for c in p.top_categories[:2]} == liked
        assert all(c in p.name for c in liked)
        assert p.top_items and p.gender_mix and p.age_mix and p.mean_age is not None
        assert set(p.rfm) == {"recency_days", "frequency", "monetary"}


def test_pca_map_is_consistent(toy_bundle: Bundle) -> None:
    seg = toy_bundle.segments
    assert seg.user_xy.shape == (len(seg.sample_users), 2) and seg.centroid_xy.shape == (seg.k, 2)
    np.testing.assert_allclose(seg.project(toy_bundle.user_vectors[seg.sample_users]), seg.user_xy, atol=1e-5)
    np.testing.assert_allclose(seg.project(seg.centroids), seg.centroid_xy, atol=1e-5)
    summary = toy_bundle.manifest["segments"]
    assert summary["k"] == seg.k and summary["names"] == [p.name for p in seg.profiles]


def test_demo_shop_planted_segments_are_recovered() -> None:
    demo_shop = pytest.importorskip("training.data.demo_shop")
    ds = demo_shop.generate_demo_shop(seed=0, n_users=400, n_items=300)
    items = ds.items.assign(item_id=ds.items["item_id"].astype(str))
    categories = sorted({c for cats in items["categories"] for c in cats})
    # Content-pooled user vectors: the history half of the user tower, without training.
    onehot = np.zeros((len(items), len(categories)), dtype=np.float32)
    for row, cats in enumerate(items["categories"]):
        for c in cats:
            onehot[row, categories.index(c)] = 1.0
    price_rank = items["price"].rank(pct=True).to_numpy(dtype=np.float32)[:, None]
    item_vec = np.hstack([onehot, price_rank])
    row_of = {item: i for i, item in enumerate(items["item_id"])}
    inter = ds.interactions.assign(user_id=ds.interactions["user_id"].astype(str))
    users = ds.users.assign(user_id=ds.users["user_id"].astype(str))
    user_ids = users["user_id"].tolist()
    vectors = np.zeros((len(user_ids), item_vec.shape[1]), dtype=np.float32)
    by_user = {
        u: g["item_id"].astype(str).map(row_of).dropna().astype(int).to_numpy()
        for u, g in inter.groupby("user_id")
    }
    for i, u in enumerate(user_ids):
        rows = by_user.get(u, np.empty(0, dtype=int))
        if len(rows):
            vectors[i] = item_vec[rows].mean(axis=0)
    history = inter.assign(weight=1.0)[["user_id", "item_id", "timestamp", "weight"]]
    model = segment_users(vectors, user_ids, users, items, history)
    planted = users["planted_segment"].to_numpy()
    assert agreement(model.labels, planted)["ari"] > 0.6
    assert {p.name for p in model.profiles} and all(p.top_categories for p in model.profiles)


@pytest.mark.slow
def test_trained_demo_shop_bundle_recovers_planted_segments(tmp_path: Path) -> None:
    """The whole path: train the real two-tower model, write a bundle, segment its user vectors."""
    pytest.importorskip("lightning")
    from training.train import train
    from training.train_config import TrainConfig

    config = TrainConfig.model_validate(
        {
            "name": "segments",
            "data": {"kind": "demo", "demo_users": 600, "demo_items": 300},
            "features": {"use_text": False},
            "model": {"dim": 32, "hidden": 64, "id_dim": 32},
            "optim": {"batch_size": 256},
            "trainer": {"max_epochs": 8, "patience": 3, "accelerator": "cpu"},
        }
    )
    result = train(config, tmp_path, progress=False)
    assert result.bundle_dir is not None
    bundle = Bundle.load(result.bundle_dir)
    planted = bundle.users["planted_segment"].to_numpy()
    assert agreement(bundle.segments.labels, planted)["ari"] > 0.6
    assert len({p.name for p in bundle.segments.profiles}) == bundle.segments.k
