"""Split invariants for every protocol: disjoint, no leakage, evaluated users have history."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explainrec.errors import ConfigError, DataError
from training.data.demo_shop import generate_demo_shop
from training.data.implicit import positives
from training.data.schema import Dataset
from training.data.splits import PROTOCOLS, make_split


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return generate_demo_shop(seed=4, n_users=120, n_items=100)


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user_id"], frame["item_id"], strict=True))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_invariants(shop: Dataset, protocol: str) -> None:
    split = make_split(shop, protocol, seed=1)  # type: ignore[arg-type]
    train, valid, test = _pairs(split.train), _pairs(split.valid), _pairs(split.test)
    assert train and valid and test
    assert not (train & valid) and not (train & test) and not (valid & test)
    # Together the parts never invent a positive.
    assert train | valid | test <= _pairs(positives(shop.interactions))
    train_users = set(split.train["user_id"])
    evaluated = set(split.valid["user_id"]) | set(split.test["user_id"])
    if protocol == "cold-start":
        assert evaluated == set(split.cold_users)
        assert not (train_users & set(split.cold_users))
    else:
        assert split.cold_users == []
        assert evaluated <= train_users
    for frame in (split.train, split.valid, split.test):
        assert list(frame.columns) == ["user_id", "item_id", "timestamp", "weight"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deterministic_by_seed(shop: Dataset, protocol: str) -> None:
    a = make_split(shop, protocol, seed=3)  # type: ignore[arg-type]
    b = make_split(shop, protocol, seed=3)  # type: ignore[arg-type]
    for part in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    assert a.cold_users == b.cold_users


def test_random_seed_matters_and_fractions_hold(shop: Dataset) -> None:
    a, b = make_split(shop, "random", seed=0), make_split(shop, "random", seed=1)
    assert _pairs(a.test) != _pairs(b.test)
    total = len(a.train) + len(a.valid) + len(a.test)
    assert 0.06 < len(a.test) / total < 0.16 and 0.06 < len(a.valid) / total < 0.16


def test_temporal_holds_out_each_users_last_two(shop: Dataset) -> None:
    split = make_split(shop, "temporal")
    last_train = split.train.groupby("user_id")["timestamp"].max()
    valid = split.valid.set_index("user_id")["timestamp"]
    test = split.test.set_index("user_id")["timestamp"]
    assert split.test["user_id"].is_unique and split.valid["user_id"].is_unique
    assert (valid >= last_train.reindex(valid.index)).all()
    assert (test >= valid.reindex(test.index)).all()


def test_global_time_cuts_by_date(shop: Dataset) -> None:
    split = make_split(shop, "global-time")
    assert split.train["timestamp"].max() < split.valid["timestamp"].min()
    assert split.valid["timestamp"].max() < split.test["timestamp"].min()
    explicit = make_split(shop, "global-time", valid_start="2025-05-01", test_start="2025-06-01")
    assert explicit.train["timestamp"].max() < pd.Timestamp("2025-05-01", tz="UTC")
    assert explicit.test["timestamp"].min() >= pd.Timestamp("2025-06-01", tz="UTC")


def test_users_with_few_positives_stay_in_train() -> None:
    ts = pd.Timestamp("2025-01-01", tz="UTC")
    inter = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "b", "b"],
            "item_id": ["1", "2", "1", "2", "3", "4"],
            "timestamp": [ts + pd.Timedelta(days=d) for d in range(6)],
            "event": "click",
        }
    )
    ds = Dataset("tiny", pd.DataFrame({"user_id": ["a", "b"]}), pd.DataFrame(), inter)
    for protocol in ("random", "temporal"):
        split = make_split(ds, protocol)  # type: ignore[arg-type]
        assert set(split.train.loc[split.train["user_id"] == "a", "item_id"]) == {"1", "2"}
        assert len(split.test) == 1 and split.test["user_id"].iloc[0] == "b"


def test_bad_options(shop: Dataset) -> None:
    with pytest.raises(ConfigError, match="protocol"):
        make_split(shop, "leave-one-out")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="valid_frac"):
        make_split(shop, "random", valid_frac=1.5)
    with pytest.raises(ConfigError, match="unknown split option"):
        make_split(shop, "random", test_size=0.2)
    with pytest.raises(ConfigError, match="not a date"):
        make_split(shop, "global-time", valid_start="soon")
    no_pos = Dataset("x", shop.users, shop.items, shop.interactions.assign(event="view"))
    with pytest.raises(DataError, match="positive"):
        make_split(no_pos, "random")


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 7),
            st.integers(0, 11),
            st.integers(0, 50),
            st.sampled_from(["click", "view", "purchase", "rating"]),
            st.integers(1, 5),
        ),
        min_size=4,
        max_size=80,
    ),
    protocol=st.sampled_from(PROTOCOLS),
    seed=st.integers(0, 3),
)
def test_invariants_hold_on_arbitrary_data(
    rows: list[tuple[int, int, int, str, int]], protocol: str, seed: int
) -> None:
    inter = pd.DataFrame(
        {
            "user_id": [f"u{r[0]}" for r in rows],
            "item_id": [f"i{r[1]}" for r in rows],
            "timestamp": [pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(hours=r[2]) for r in rows],
            "event": [r[3] for r in rows],
            "value": [float(r[4]) for r in rows],
        }
    )
    ds = Dataset("prop", pd.DataFrame({"user_id": sorted(set(inter["user_id"]))}), pd.DataFrame(), inter)
    if positives(inter)["user_id"].nunique() < 2:
        return
    split = make_split(ds, protocol, seed=seed)  # type: ignore[arg-type]
    train, valid, test = _pairs(split.train), _pairs(split.valid), _pairs(split.test)
    assert not (train & valid) and not (train & test) and not (valid & test)
    assert len(train) + len(valid) + len(test) <= len(positives(inter))
    evaluated = set(split.valid["user_id"]) | set(split.test["user_id"])
    if protocol == "cold-start":
        assert not (set(split.train["user_id"]) & evaluated)
    else:
        assert evaluated <= set(split.train["user_id"])
        if protocol == "global-time" and len(split.valid):
            assert split.train["timestamp"].max() < split.valid["timestamp"].min()
