"""The towers alone: shapes, normalisation, cold inputs, pooling paths and rebuild from config."""

from __future__ import annotations

import pytest
import torch

from embeddings import towers
from embeddings.towers import (
    ItemFeatures,
    TwoTowerConfig,
    TwoTowerModel,
    UserBatch,
    _mean_pool,
    interests_from_history,
)
from tests.support.tower_variants import DOT_WIDE

N_USERS, N_ITEMS, N_CATS, TEXT = 6, 12, 3, 5


def make_model(**overrides: object) -> TwoTowerModel:
    torch.manual_seed(0)
    features = ItemFeatures(
        categories=torch.eye(N_CATS)[torch.arange(N_ITEMS) % N_CATS],
        price_bucket=torch.arange(N_ITEMS) % 4,
        text=torch.randn(N_ITEMS, TEXT),
    )
    settings: dict[str, object] = {"profile_cardinalities": [3, 5], "dim": 8, "hidden": 16, "id_dim": 8}
    config = TwoTowerConfig(
        n_users=N_USERS,
        n_items=N_ITEMS,
        n_categories=N_CATS,
        n_price_buckets=4,
        text_dim=TEXT,
        **{**settings, **overrides},  # type: ignore[arg-type]
    )
    return TwoTowerModel(config, features).eval()


def batch(user_idx: list[int], history: list[list[int]], length: int = 4) -> UserBatch:
    hist = torch.zeros((len(user_idx), length), dtype=torch.long)
    mask = torch.zeros_like(hist, dtype=torch.bool)
    for row, items in enumerate(history):
        hist[row, : len(items)] = torch.tensor(items, dtype=torch.long)
        mask[row, : len(items)] = True
    return UserBatch(
        user_idx=torch.tensor(user_idx),
        profile=torch.tensor([[1, 2]] * len(user_idx)),
        interests=torch.zeros((len(user_idx), N_CATS)),
        history=hist,
        history_mask=mask,
    )


def test_outputs_are_unit_vectors_of_the_configured_size() -> None:
    for item_bias in (False, True):
        model = make_model(item_bias=item_bias)
        users = model.encode_users(batch([1, 0], [[1, 2], []]))
        items = model.all_item_vectors()
        assert users.shape == (2, 8) and items.shape == (N_ITEMS, 8)
        assert torch.allclose(users.norm(dim=1), torch.ones(2), atol=1e-5)
        assert torch.allclose(items.norm(dim=1), torch.ones(N_ITEMS), atol=1e-5)


@pytest.mark.parametrize(
    "overrides", [DOT_WIDE, {**DOT_WIDE, "wide": False}, {**DOT_WIDE, "use_content": False}]
)
def test_dot_similarity_unit_vectors_rank_as_the_inner_product(overrides: dict[str, object]) -> None:
    model = make_model(**overrides)
    with torch.no_grad():  # items of very different lengths, as popularity makes them
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
    users_in = batch([1, 0, 3], [[1, 2], [], [4, 5, 6, 7]])
    items = model.all_item_vectors()
    users = model.encode_users(users_in)
    assert items.shape == (N_ITEMS, 8) and users.shape == (3, 8)
    assert torch.allclose(items.norm(dim=1), torch.ones(N_ITEMS), atol=1e-5)
    assert torch.allclose(users.norm(dim=1), torch.ones(3), atol=1e-5)
    raw_users = model.user_logit_vectors(users_in)
    raw_items = model.item_logit_vectors(torch.arange(N_ITEMS))
    assert raw_users.shape == (3, 7) and raw_items.shape == (N_ITEMS, 7)
    dot = raw_users @ raw_items.T
    bound = raw_items.norm(dim=1).max()
    # cosine = dot / (|u| M): the same order for every user, whatever the item lengths.
    assert torch.allclose(users @ items.T * raw_users.norm(dim=1, keepdim=True) * bound, dot, atol=1e-4)
    assert torch.equal((users @ items.T).argsort(dim=1), dot.argsort(dim=1))
    # The longest item reaches the bound; its retrieval coordinate is zero.
    assert items[raw_items.norm(dim=1).argmax(), -1].abs() < 1e-3


def test_a_wide_tower_without_other_inputs_is_a_linear_autoencoder() -> None:
    model = make_model(**DOT_WIDE, use_content=False, use_user_id=False, use_profile=False)
    assert model.user_mlp is None and model.item_mlp is None
    users_in = batch([0], [[2, 5]])
    expected_user = (model.history_item.weight[2] + model.history_item.weight[5]) / 2**0.5
    assert torch.allclose(model.user_logit_vectors(users_in)[0], expected_user, atol=1e-6)
    items = model.item_logit_vectors(torch.tensor([3]))
    assert (
        torch.allclose(items[0, :-1], model.item_id.weight[3])
        and items[0, -1] == model.item_bias.weight[3, 0]
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"similarity": "dot"}, "needs history_tied false"),
        ({"wide": True}, "wide needs use_history"),
        ({**DOT_WIDE, "dim": 2}, "dim >= 3"),
        ({"use_item_id": False, "use_content": False}, "item tower needs"),
    ],
)
def test_inconsistent_dot_and_wide_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_model(**overrides)


def test_padding_never_changes_a_user_vector() -> None:
    for pooling in ("mean", "attention"):
        model = make_model(history_pooling=pooling)
        short = model.encode_users(batch([2], [[3, 4]], length=2))
        padded = model.encode_users(batch([2], [[3, 4]], length=6))
        assert torch.allclose(short, padded, atol=1e-5), pooling


def test_precomputed_item_vectors_give_the_same_users() -> None:
    for pooling in ("mean", "attention"):
        model = make_model(history_pooling=pooling, history_item_embedding=True)
        users = batch([1, 3, 0], [[1, 2, 5], [7], []])
        items = model.all_item_vectors()
        direct = model.encode_users(users)
        assert torch.allclose(direct, model.encode_users(users, item_vectors=items), atol=1e-5)
        gathered = model.encode_users(users, history_vectors=items[users.history])
        assert torch.allclose(direct, gathered, atol=1e-5)


def test_history_changes_the_user_vector_and_text_free_items_work() -> None:
    model = make_model()
    a, b = model.encode_users(batch([0, 0], [[0, 3], [1, 4]]))
    assert not torch.allclose(a, b)
    no_text = TwoTowerModel(
        TwoTowerConfig(n_users=2, n_items=4, n_categories=2, n_price_buckets=2, text_dim=0),
        ItemFeatures(torch.ones(4, 2), torch.zeros(4, dtype=torch.long), torch.zeros(4, 0)),
    )
    assert no_text.all_item_vectors().shape == (4, 64)


def test_rebuilt_from_config_and_state_dict_gives_identical_vectors() -> None:
    model = make_model(history_item_embedding=True, item_bias=True)
    with torch.no_grad():
        model.item_bias.weight.normal_()
    rebuilt = TwoTowerModel(
        TwoTowerConfig(**model.config.to_dict()),  # type: ignore[arg-type]
        ItemFeatures(
            torch.zeros(N_ITEMS, N_CATS), torch.zeros(N_ITEMS, dtype=torch.long), torch.zeros(N_ITEMS, TEXT)
        ),
    )
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    users = batch([1, 0], [[2], [4, 5]])
    assert torch.allclose(model.encode_users(users), rebuilt.encode_users(users))
    assert torch.allclose(model.all_item_vectors(), rebuilt.all_item_vectors())


def test_id_dropout_only_applies_in_training() -> None:
    model = make_model(user_id_dropout=1.0, use_history=False)
    with_id = model.encode_users(batch([1], [[]]))
    model.train()
    model.user_mlp[2].p = 0.0  # isolate id dropout from ordinary dropout
    without_id = model.encode_users(batch([1], [[]]))
    anonymous = model.eval().encode_users(batch([0], [[]]))
    assert not torch.allclose(with_id, without_id)
    assert torch.allclose(without_id, anonymous, atol=1e-6)


def test_sqrt_pooled_history_embedding_grows_with_repeated_evidence_and_ignores_padding() -> None:
    model = make_model(history_item_embedding=True, history_item_norm="sqrt", history_tied=False)
    with torch.no_grad():
        model.history_item.weight.normal_()
    short = model.encode_users(batch([0], [[3, 4]], length=2))
    assert torch.allclose(short, model.encode_users(batch([0], [[3, 4]], length=6)), atol=1e-5)
    # Sum over sqrt(length): two copies of one item weigh sqrt(2) times one copy, unlike a mean.
    table = model.history_item.weight
    one = _mean_pool(torch.tensor([[3]]), torch.ones(1, 1, dtype=torch.bool), table, "sqrt")
    two = _mean_pool(torch.tensor([[3, 3]]), torch.ones(1, 2, dtype=torch.bool), table, "sqrt")
    assert torch.allclose(two, one * 2**0.5, atol=1e-5)


def test_untied_history_needs_its_own_embedding() -> None:
    with pytest.raises(ValueError, match="history_item_embedding"):
        make_model(history_tied=False)


def _interests_by_gather(categories: torch.Tensor, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The definition: each history row's category rows, masked, summed, normalised."""
    counts = (categories[history] * mask.unsqueeze(-1).float()).sum(dim=1)
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1e-6)


@pytest.mark.parametrize("dense", [True, False])
def test_interests_from_history_equal_the_gathered_definition_exactly(
    dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not dense:  # a catalogue above the dense limit gathers rows instead
        monkeypatch.setattr(towers, "_DENSE_POOL_MAX_ROWS", 0)
    generator = torch.Generator().manual_seed(0)
    categories = (torch.rand(40, 7, generator=generator) < 0.3).float()
    history = torch.randint(0, 40, (9, 300), generator=generator)  # repeats, long histories
    mask = torch.rand(9, 300, generator=generator) < 0.8
    mask[0] = False  # an empty history: all zeros
    got = interests_from_history(categories, history, mask)
    assert torch.equal(got, _interests_by_gather(categories, history, mask))
    assert torch.equal(got[0], torch.zeros(7))
    # Mixed precision would round counts above 256 in bf16: the counts stay float32.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = interests_from_history(categories, history, mask)
    assert mixed.dtype == torch.float32 and torch.equal(mixed, got)
