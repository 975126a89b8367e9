"""The demo shop generator: deterministic, realistic shape, and learnable planted segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from explainrec.errors import ConfigError
from training.data.demo_shop import CATEGORIES, DAYS, SEGMENTS, START, generate_demo_shop


def test_same_seed_same_tables_and_other_seed_differs() -> None:
    a = generate_demo_shop(seed=7, n_users=60, n_items=80)
    b = generate_demo_shop(seed=7, n_users=60, n_items=80)
    c = generate_demo_shop(seed=8, n_users=60, n_items=80)
    for table in ("users", "items", "interactions"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    assert not a.interactions.equals(c.interactions)


def test_shape_and_attributes() -> None:
    ds = generate_demo_shop(seed=0, n_users=60, n_items=80)
    assert len(ds.users) == 60 and len(ds.items) == 80
    assert ds.items["item_id"].is_unique and ds.items["title"].is_unique
    assert {c for cats in ds.items["categories"] for c in cats} == set(CATEGORIES)
    assert (ds.items["price"] > 0).all() and ds.items["description"].str.len().min() > 20
    assert {"age", "gender", "location", "income", "planted_segment"} <= set(ds.users.columns)
    assert set(ds.interactions["event"]) == {"view", "click", "cart", "purchase"}
    assert ds.interactions["user_id"].isin(ds.users["user_id"]).all()
    assert ds.interactions["item_id"].isin(ds.items["item_id"]).all()
    ts = ds.interactions["timestamp"]
    assert ts.min() >= START and ts.max() <= START + pd.Timedelta(days=DAYS + 1)
    # Spread over about six months, not bunched up.
    assert (ts.max() - ts.min()).days > 150


def test_purchase_value_is_price_times_quantity() -> None:
    ds = generate_demo_shop(seed=1, n_users=60, n_items=80)
    bought = ds.interactions[ds.interactions["event"] == "purchase"]
    price = bought["item_id"].map(ds.items.set_index("item_id")["price"])
    assert len(bought) > 0
    np.testing.assert_allclose(bought["value"], (price * bought["quantity"].astype(float)).round(2))
    assert ds.interactions.loc[ds.interactions["event"] != "purchase", "value"].isna().all()


@pytest.mark.parametrize("seed", [0, 5])
def test_planted_segments_are_recoverable_from_category_shares(seed: int) -> None:
    ds = generate_demo_shop(seed=seed, n_users=400, n_items=300)
    category = ds.items.set_index("item_id")["categories"].str[0]
    shares = (
        pd.crosstab(ds.interactions["user_id"], ds.interactions["item_id"].map(category), normalize="index")
        .reindex(ds.users["user_id"])
        .fillna(0.0)
    )
    labels = KMeans(n_clusters=len(SEGMENTS), n_init=5, random_state=0).fit_predict(shares.to_numpy())
    ari = adjusted_rand_score(ds.users["planted_segment"].to_numpy(), labels)
    assert ari >= 0.5


def test_segments_differ_in_price_level() -> None:
    ds = generate_demo_shop(seed=2, n_users=400, n_items=300)
    bought = ds.interactions[ds.interactions["event"] == "purchase"]
    segment = bought["user_id"].map(ds.users.set_index("user_id")["planted_segment"])
    price = bought["item_id"].map(ds.items.set_index("item_id")["price"])
    category = bought["item_id"].map(ds.items.set_index("item_id")["categories"].str[0])
    median = category.map({c: v[0] for c, v in CATEGORIES.items()})
    rel = (price / median).groupby(segment).median()
    names = [s.name for s in SEGMENTS]
    # Bargain hunters pay less relative to category medians than the premium home upgraders.
    assert rel[names.index("bargain DIYers")] < rel[names.index("home upgraders")]


def test_too_few_items_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="n_items"):
        generate_demo_shop(n_items=5)
