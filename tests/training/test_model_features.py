"""Model inputs from canonical tables: spec fitted on training users, histories, profiles."""

from __future__ import annotations

import pandas as pd
import torch

from training.data.schema import Dataset
from training.features import build_feature_spec, build_item_features, build_user_table, user_batch


def shop() -> tuple[Dataset, pd.DataFrame]:
    users = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d"],
            "gender": ["F", "F", "F", "M"],
            "age": [20, 30, 40, None],
            "planted_segment": [0, 1, 0, 1],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["x", "y", "z"],
            "title": ["X", "Y", "Z"],
            "categories": [["Books"], ["Books", "Games"], []],
            "price": [1.0, 10.0, None],
        }
    )
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    train = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "c"],
            "item_id": ["x", "y", "z", "y", "x"],
            "timestamp": [t0 + pd.Timedelta(days=d) for d in (3, 1, 2, 0, 0)],
            "weight": 1.0,
        }
    )
    interactions = train.assign(event="click").drop(columns="weight")
    return Dataset("shop", users, items, interactions), train


def test_spec_uses_profile_fields_seen_in_training_and_never_ground_truth() -> None:
    ds, train = shop()
    spec = build_feature_spec(ds, train, max_history=2)
    assert spec.profile_fields == ["gender", "age"]  # planted_segment is not a feature
    assert spec.profile_vocab["gender"] == ["F"]  # "M" belongs to an untrained user only
    assert spec.categories == ["Books", "Games"]
    assert spec.user_index("a") == 1 and spec.user_index("nobody") == 0


def test_user_table_keeps_the_most_recent_history_right_aligned() -> None:
    ds, train = shop()
    spec = build_feature_spec(ds, train, max_history=2)
    table = build_user_table(spec, ds.users, train)
    a, d = spec.user_index("a"), spec.user_index("d")
    # a's positives by time: y (day 1), z (day 2), x (day 3) -> keeps z, x.
    assert table.history[a].tolist() == [spec.item_index("z"), spec.item_index("x")]
    assert table.history_mask[a].tolist() == [True, True]
    assert not table.history_mask[d].any() and not table.history_mask[0].any()
    assert table.profile[d, 0] == 0  # "M" unknown
    assert table.profile[0].tolist() == [0, 0]


def test_string_batches_match_the_table_and_honour_chosen_interests() -> None:
    ds, train = shop()
    spec = build_feature_spec(ds, train, max_history=2)
    features = build_item_features(ds, spec, use_text=False)
    assert features.price_bucket[2] == 0 and features.price_bucket[1] > features.price_bucket[0]
    table = build_user_table(spec, ds.users, train)
    from_table = table.batch(torch.tensor([spec.user_index("a")]), features.categories)
    from_strings = user_batch(spec, ds.users.iloc[[0]], [["y", "z", "x"]], features.categories)
    for name in ("user_idx", "profile", "interests", "history", "history_mask"):
        assert torch.equal(getattr(from_table, name), getattr(from_strings, name)), name
    # z has no category and x is Books: the history's distribution is all Books.
    assert from_strings.interests.tolist() == [[1.0, 0.0]]
    chosen = user_batch(spec, ds.users.iloc[[3]], [[]], features.categories, interests=[["Games", "Nope"]])
    assert chosen.interests.tolist() == [[0.0, 1.0]] and chosen.user_idx.tolist() == [spec.user_index("d")]
