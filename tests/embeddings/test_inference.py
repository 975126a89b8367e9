"""Cold-start and fold-in user vectors through the real user tower of the toy bundle."""

from __future__ import annotations

import time

import numpy as np
import pytest

from embeddings.bundle import Bundle
from embeddings.inference import UserEncoder
from explainrec.errors import DataError

# Profiles shaped like the toy shop's even users (Books/Games) and odd users (Garden/Kitchen).
BOOKISH = {"age": 20, "gender": "F", "occupation": "student", "location": "north"}
GARDENER = {"age": 40, "gender": "M", "occupation": "writer", "location": "south"}


def _top_categories(bundle: Bundle, ids: np.ndarray) -> list[str]:
    return [c for cats in bundle.items.iloc[ids]["categories"] for c in cats]


def test_cold_start_profiles_get_different_top_items(toy_bundle: Bundle) -> None:
    enc = UserEncoder(toy_bundle)
    a = enc.encode(BOOKISH, [], None, interests=["Books", "Games"])
    b = enc.encode(GARDENER, [], None, interests=["Garden", "Kitchen"])
    assert a.shape == (16,) and abs(float(np.linalg.norm(a)) - 1) < 1e-5
    top_a, _ = toy_bundle.retriever.search(a, 5)
    top_b, _ = toy_bundle.retriever.search(b, 5)
    assert set(top_a.tolist()) != set(top_b.tolist())
    # The planted tastes show: each profile's picks lean to the categories it chose.
    cats_a, cats_b = _top_categories(toy_bundle, top_a), _top_categories(toy_bundle, top_b)
    assert sum(c in ("Books", "Games") for c in cats_a) > len(cats_a) / 2
    assert sum(c in ("Garden", "Kitchen") for c in cats_b) > len(cats_b) / 2


def test_cold_start_with_liked_items_and_no_profile(toy_bundle: Bundle) -> None:
    enc = UserEncoder(toy_bundle)
    liked = ["i20", "i21", "i30"]  # Garden, Garden, Kitchen
    v = enc.encode(None, liked, None)
    ids, _ = toy_bundle.retriever.search(
        v, 5, exclude=[toy_bundle.feature_spec.item_ids.index(i) for i in liked]
    )
    assert sum(c in ("Garden", "Kitchen") for c in _top_categories(toy_bundle, ids)) >= 3


def test_fold_in_moves_the_vector_towards_new_likes(toy_bundle: Bundle) -> None:
    enc = UserEncoder(toy_bundle)
    spec = toy_bundle.feature_spec
    user = "u00"  # likes Books/Games
    history = [spec.item_ids[i] for i in toy_bundle.history[user]]
    profile = toy_bundle.users.iloc[0].to_dict()
    before = enc.encode(profile, history, user)
    garden = [f"i{i}" for i in range(20, 30)]
    after = enc.encode(profile, history + garden, user)
    garden_idx = [spec.item_ids.index(i) for i in garden]
    gain = toy_bundle.item_vectors[garden_idx] @ after - toy_bundle.item_vectors[garden_idx] @ before
    assert gain.mean() > 0


def test_unknown_user_encodes_like_no_id(toy_bundle: Bundle) -> None:
    enc = UserEncoder(toy_bundle)
    np.testing.assert_allclose(
        enc.encode(BOOKISH, ["i01"], "someone-new"), enc.encode(BOOKISH, ["i01"], None)
    )


def test_bad_inputs_raise_data_error(toy_bundle: Bundle) -> None:
    enc = UserEncoder(toy_bundle)
    with pytest.raises(DataError, match="unknown item ids"):
        enc.encode(None, ["no-such-item"], None)
    with pytest.raises(DataError, match="lists of strings"):
        enc.encode(None, "i01", None)


def test_fold_in_is_fast(toy_bundle: Bundle) -> None:
    enc = UserEncoder(toy_bundle)
    history = [f"i{i:02d}" for i in range(20)]
    enc.encode(BOOKISH, history, "u01")
    times = []
    for _ in range(30):
        t = time.perf_counter()
        enc.encode(BOOKISH, history, "u01")
        times.append(time.perf_counter() - t)
    # The target is 5 ms; the bound is loose because CI cores are shared. bench measures it precisely.
    assert float(np.median(times)) < 0.025


def test_new_users_get_a_segment(toy_bundle: Bundle) -> None:
    enc = UserEncoder(toy_bundle)
    labels = toy_bundle.segments.assign(
        np.stack([enc.encode(BOOKISH, [], None, ["Books"]), enc.encode(GARDENER, [], None, ["Garden"])])
    )
    assert labels.shape == (2,) and set(labels.tolist()) <= set(range(toy_bundle.segments.k))
