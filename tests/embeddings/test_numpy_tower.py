"""Serving's numpy user tower against the torch tower it copies, for every model variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embeddings import numpy_tower
from embeddings.numpy_tower import NumpyUserTower, _HistorySums
from embeddings.towers import ItemFeatures, TwoTowerConfig, TwoTowerModel, UserBatch, interests_from_history
from tests.support.tower_variants import DOT_WIDE

N_USERS, N_ITEMS, N_CATS, TEXT = 7, 40, 4, 5

VARIANTS: dict[str, dict[str, object]] = {
    "defaults": {},
    "attention pooling": {"history_pooling": "attention"},
    "separate history, sqrt": {
        "history_item_embedding": True,
        "history_item_norm": "sqrt",
        "history_tied": False,
    },
    "tied and separate history": {"history_item_embedding": True},
    "item bias": {"item_bias": True, "history_item_embedding": True},
    "no ids": {"use_user_id": False, "use_item_id": False},
    "no profile": {"use_profile": False},
    "no profile fields": {"profile_cardinalities": []},
    "no history": {"use_history": False},
    "dot, wide": DOT_WIDE,
    "dot, wide, no other user inputs": {**DOT_WIDE, "use_user_id": False, "use_profile": False},
    "dot, not wide": {"similarity": "dot", "history_item_embedding": True, "history_tied": False},
}


def make_model(**overrides: object) -> TwoTowerModel:
    torch.manual_seed(3)
    features = ItemFeatures(
        categories=(torch.rand(N_ITEMS, N_CATS) < 0.4).float(),
        price_bucket=torch.arange(N_ITEMS) % 4,
        text=torch.randn(N_ITEMS, TEXT),
    )
    settings: dict[str, object] = {"profile_cardinalities": [3, 5, 2], "dim": 8, "hidden": 16, "id_dim": 8}
    settings.update(overrides)
    config = TwoTowerConfig(
        n_users=N_USERS,
        n_items=N_ITEMS,
        n_categories=N_CATS,
        n_price_buckets=4,
        text_dim=TEXT,
        **settings,  # type: ignore[arg-type]
    )
    model = TwoTowerModel(config, features).eval()
    with torch.no_grad():  # trained-looking weights: the padding rows too, which training keeps at zero
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
        for name, table in model.named_parameters():
            if name == "user_id.weight" or name.startswith("profile_embeddings"):
                table[0].zero_()
    return model


def random_batch(rng: np.random.Generator, batch: int, length: int, fields: int) -> dict[str, np.ndarray]:
    """Right-aligned histories of every length from none to full, repeats included; half the rows
    with chosen interests, half without (derived from the history)."""
    history = rng.integers(0, N_ITEMS, (batch, length))
    lengths = np.arange(batch) % (length + 1)
    mask = np.arange(length)[None, :] >= (length - lengths)[:, None]
    history[~mask] = 0
    if length > 1:
        history[:, -1] = np.where(lengths > 1, history[:, -2], history[:, -1])  # a repeated item
    interests = rng.random((batch, N_CATS)).astype(np.float32)
    interests[::2] = 0
    return {
        "user_idx": rng.integers(0, N_USERS + 1, batch),
        "profile": rng.integers(0, 2, (batch, fields)),
        "interests": interests,
        "history": history,
        "mask": mask,
    }


def torch_vectors(
    model: TwoTowerModel, arrays: dict[str, np.ndarray], item_vectors: torch.Tensor
) -> np.ndarray:
    """What serving computed with torch before: interests derived as training does, then the tower."""
    history = torch.from_numpy(arrays["history"])
    mask = torch.from_numpy(arrays["mask"])
    interests = torch.from_numpy(arrays["interests"])
    if history.shape[1]:
        derived = interests_from_history(model.item_categories, history, mask)
        interests = torch.where((interests.sum(dim=1) == 0).unsqueeze(1), derived, interests)
    batch = UserBatch(
        torch.from_numpy(arrays["user_idx"]), torch.from_numpy(arrays["profile"]), interests, history, mask
    )
    with torch.inference_mode():
        return model.encode_users(batch, item_vectors=item_vectors).numpy()


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("batch", "length"), [(1, 0), (1, 1), (1, 6), (2, 6), (9, 5), (24, 30)])
def test_numpy_tower_equals_the_torch_tower(variant: str, batch: int, length: int) -> None:
    model = make_model(**VARIANTS[variant])
    item_vectors = model.all_item_vectors()
    tower = NumpyUserTower(model, item_vectors.numpy())
    arrays = random_batch(
        np.random.default_rng(batch * 100 + length),
        batch,
        length,
        max(1, len(model.config.profile_cardinalities)),
    )
    got = tower.encode_users(**arrays)
    assert got.dtype == np.float32 and got.shape == (batch, model.config.dim)
    np.testing.assert_allclose(got, torch_vectors(model, arrays, item_vectors), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("batch", "gather_cost", "path"),
    [(1, 0, "one history"), (6, 0, "several, gathered"), (6, 10**9, "count matrix")],
)
def test_each_way_of_summing_histories_adds_the_right_rows(
    monkeypatch: pytest.MonkeyPatch, batch: int, gather_cost: int, path: str
) -> None:
    monkeypatch.setattr(numpy_tower, "GATHER_COST_IN_CELLS", gather_cost)
    rng = np.random.default_rng(batch)
    table = rng.standard_normal((N_ITEMS, 3)).astype(np.float32)
    history = rng.integers(0, N_ITEMS, (batch, 5))
    mask = rng.random((batch, 5)) < 0.6
    mask[0] = False  # an empty history sums to zeros
    if batch > 1:
        history[1, :] = 7  # one item many times counts as often
        mask[1, :] = True
    sums = _HistorySums(history, mask, N_ITEMS)
    taken = (
        "count matrix"
        if sums.weights is not None
        else "several, gathered"
        if sums.starts is not None
        else "one history"
    )
    assert taken == path
    expected = np.stack([table[history[b][mask[b]]].sum(axis=0) for b in range(batch)])
    np.testing.assert_allclose(sums.sum(table), expected, atol=1e-5)
    np.testing.assert_array_equal(sums.counts[:, 0], mask.sum(axis=1))


def test_a_request_gathers_rows_and_the_evidence_multiplies_counts() -> None:
    rows = 1682  # the ML-100K catalogue
    one_user = _HistorySums(np.arange(12)[None, :], np.ones((1, 12), dtype=bool), rows)
    two_users = _HistorySums(np.arange(24).reshape(2, 12), np.ones((2, 12), dtype=bool), rows)
    windows = _HistorySums(np.zeros((130, 130), dtype=np.int64), np.ones((130, 130), dtype=bool), rows)
    assert one_user.weights is None and one_user.starts is None
    assert two_users.weights is None and two_users.starts is not None
    assert windows.weights is not None


def test_the_tower_keeps_its_own_copy_of_the_weights() -> None:
    model = make_model()
    tower = NumpyUserTower(model, model.all_item_vectors().numpy())
    arrays = random_batch(np.random.default_rng(1), 3, 4, 3)
    before = tower.encode_users(**arrays)
    with torch.no_grad():
        first_layer = model.user_mlp[0]
        assert isinstance(first_layer, torch.nn.Linear)
        first_layer.weight.mul_(2)
    np.testing.assert_array_equal(tower.encode_users(**arrays), before)


@pytest.mark.parametrize(
    "values", [1, 300, numpy_tower.TORCH_GELU_MIN_VALUES - 1, numpy_tower.TORCH_GELU_MIN_VALUES, 80 * 256]
)
def test_gelu_is_torchs_exact_gelu_on_either_side_of_the_switch(values: int) -> None:
    x = np.random.default_rng(values).normal(scale=3.0, size=(1, values)).astype(np.float32)
    want = torch.nn.GELU()(torch.from_numpy(x.copy())).numpy()
    got = numpy_tower._gelu(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("length", [0, 1, 7, 30])
def test_leaving_positions_out_equals_encoding_each_shortened_history(variant: str, length: int) -> None:
    """`encode_without` (the whole history's sums minus the left-out rows) against `encode_users`
    on each shortened history: repeats in the history, nothing left out, everything left out, and
    both derived (all-zero) and chosen interests."""
    model = make_model(**VARIANTS[variant])
    tower = NumpyUserTower(model, model.all_item_vectors().numpy())
    rng = np.random.default_rng(length)
    history = rng.integers(1, 12, length)  # few distinct items: repeats
    fields = max(1, len(model.config.profile_cardinalities))
    profile = rng.integers(0, 2, fields)
    left_out = [np.zeros(0, np.int64), np.arange(length)]
    left_out += [np.flatnonzero(np.isin(history, rng.choice(12, 2))) for _ in range(6)]
    for interests in (np.zeros(N_CATS, np.float32), rng.random(N_CATS).astype(np.float32)):
        got = tower.encode_without(3, profile, interests, history, left_out)
        if variant == "attention pooling":
            assert got is None
            continue
        assert got is not None and got.shape == (len(left_out), model.config.dim)
        for row, positions in zip(got, left_out, strict=True):
            kept = np.delete(history, positions)[None, :]
            want = tower.encode_users(
                np.asarray([3]), profile[None, :], interests[None, :], kept, np.ones_like(kept, bool)
            )
            np.testing.assert_allclose(row, want[0], atol=2e-6, rtol=1e-5)
