"""Loss sanity, the module's helpers, and a planted checkerboard the model must recover."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from training.data.schema import Dataset
from training.data.splits import Split
from training.loss import full_softmax_loss, sampled_softmax_loss
from training.module import _top_categories, dense_rows, emphasised_targets
from training.train import fit_two_tower
from training.train_config import TrainConfig


def unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_uninformative_scores_give_log_batch_size() -> None:
    users, items = torch.zeros(8, 4), unit(8, 4, 0)
    loss = sampled_softmax_loss(users, items, torch.arange(8), torch.tensor(20.0))
    assert loss.item() == pytest.approx(math.log(8), rel=1e-5)


def test_accidental_hits_are_masked_not_counted_as_negatives() -> None:
    users, items = torch.zeros(4, 4), unit(4, 4, 1)
    # Rows 0 and 1 share their positive: each sees 3 candidates, not 4.
    loss = sampled_softmax_loss(users, items, torch.tensor([5, 5, 6, 7]), torch.tensor(1.0))
    expected = (2 * math.log(3) + 2 * math.log(4)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_uniform_negatives_over_the_whole_catalogue_equal_the_full_softmax() -> None:
    catalogue = unit(30, 8, 2)
    users, target = unit(6, 8, 3), torch.tensor([0, 4, 4, 9, 17, 29])
    sampled = sampled_softmax_loss(
        users,
        catalogue[target],
        target,
        torch.tensor(10.0),
        negatives=catalogue,
        negative_idx=torch.arange(30),
        in_batch=False,
    )
    full = full_softmax_loss(users, catalogue, target, torch.tensor(10.0))
    assert sampled.item() == pytest.approx(full.item(), rel=1e-5)


def test_logq_lowers_the_penalty_of_popular_candidates() -> None:
    users, items = unit(4, 8, 4), unit(4, 8, 5)
    target = torch.arange(4)
    plain = sampled_softmax_loss(users, items, target, torch.tensor(5.0))
    constant_q = torch.full((4,), -2.0)
    same = sampled_softmax_loss(users, items, target, torch.tensor(5.0), positive_log_q=constant_q)
    # A constant correction cancels; making item 3 popular lowers its logit as a negative for
    # rows 0-2, but also for its own row: rows 0-2 gain, row 3 loses.
    skewed_q = torch.tensor([-5.0, -5.0, -5.0, 0.0])
    logits = users @ items.T * 5.0 - skewed_q
    rows = F.cross_entropy(logits, target, reduction="none")
    skewed = sampled_softmax_loss(users, items, target, torch.tensor(5.0), positive_log_q=skewed_q)
    assert same.item() == pytest.approx(plain.item(), rel=1e-5)
    assert skewed.item() == pytest.approx(rows.mean().item(), rel=1e-5)
    base_rows = F.cross_entropy(users @ items.T * 5.0, target, reduction="none")
    assert (rows[:3] < base_rows[:3]).all() and rows[3] > base_rows[3]


def test_dense_rows_match_scipy() -> None:
    rng = np.random.default_rng(0)
    matrix = sp.random(7, 11, density=0.3, random_state=rng, format="csr")
    indptr, indices = torch.from_numpy(matrix.indptr).long(), torch.from_numpy(matrix.indices).long()
    rows = torch.tensor([6, 0, 3, 3])
    expected = torch.from_numpy(matrix[rows.numpy()].toarray() != 0)
    assert torch.equal(dense_rows(indptr, indices, rows, 11), expected)


def test_form_interests_are_uniform_over_the_top_categories() -> None:
    dist = torch.tensor([[0.5, 0.1, 0.3, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    out = _top_categories(dist, 2)
    assert torch.allclose(out, torch.tensor([[0.5, 0.0, 0.5, 0.0, 0.0], [0.0] * 5]))


def test_emphasised_targets_weigh_down_only_the_items_still_in_the_input() -> None:
    targets = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]])
    # Row 0 still sees items 1 and 2 (item 1 twice); its padding points at item 0, masked.
    history = torch.tensor([[1, 2, 1, 0], [3, 0, 0, 0]])
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    out = emphasised_targets(targets, history, mask, 0.25)
    assert torch.equal(out, torch.tensor([[1.0, 0.25, 0.25, 0.0], [1.0, 0.0, 1.0, 0.25]]))
    assert emphasised_targets(targets, history, mask, 1.0) is targets


def checkerboard(n_users: int = 40, n_items: int = 40, per_user: int = 10) -> tuple[Dataset, Split]:
    """Even users like only even items, odd users only odd items; categories carry no signal."""
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)]})
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "title": [f"item {i}" for i in range(n_items)],
            "categories": [["all"] for _ in range(n_items)],
        }
    )
    rows = []
    for u in range(n_users):
        liked = rng.choice(np.arange(u % 2, n_items, 2), size=per_user, replace=False)
        rows += [(f"u{u}", f"i{i}", k) for k, i in enumerate(liked)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])
    frame["timestamp"] = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(frame["rank"], unit="D")
    frame["weight"] = 1.0
    interactions = frame.assign(event="click")[["user_id", "item_id", "timestamp", "event"]]
    cols = ["user_id", "item_id", "timestamp", "weight"]
    split = Split(
        train=frame[frame["rank"] < 8][cols],
        valid=frame[frame["rank"] >= 8][cols],
        test=frame.iloc[:0][cols],
        cold_users=[],
    )
    return Dataset("checkerboard", users, items, interactions), split


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the full model: ids, history, interests
        {"model": {"use_content": False, "use_profile": False, "use_history": False, "user_id_dropout": 0.0}},
        {"loss": {"uniform_negatives": -1}},
        # The shipped ml100k recipe: one multinomial row per user, a separate history embedding.
        {
            "loss": {"objective": "multinomial"},
            "optim": {"batch_size": 8},
            "features": {"history_dropout": 0.5, "profile_only_rows": 0.2},
            "model": {"history_item_embedding": True, "history_item_norm": "sqrt", "history_tied": False},
        },
        # The wide, dot-similarity recipe: raw inner products, emphasised denoising.
        {
            "loss": {"objective": "multinomial", "kept_target_weight": 0.3},
            "optim": {"batch_size": 8},
            "features": {"history_dropout": 0.5, "profile_only_rows": 0.2},
            "model": {
                "history_item_embedding": True,
                "history_item_norm": "sqrt",
                "history_tied": False,
                "similarity": "dot",
                "wide": True,
                "item_bias": True,
                "temperature": 1.0,
                "learn_temperature": False,
            },
        },
    ],
)
def test_planted_checkerboard_is_recovered(tmp_path: Path, overrides: dict[str, dict[str, object]]) -> None:
    ds, split = checkerboard()
    raw: dict[str, dict[str, object]] = {
        "features": {"use_text": False},
        "optim": {"batch_size": 32, "lr": 0.01},
        "trainer": {"max_epochs": 25, "patience": 25, "accelerator": "cpu"},
    }
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    fitted = fit_two_tower(TrainConfig.model_validate(raw), ds, split, progress=False, work_dir=tmp_path)
    scores = fitted.score_users(fitted.spec.user_ids)
    item_parity = torch.tensor([int(i[1:]) % 2 for i in fitted.item_ids])
    seen = torch.zeros_like(scores, dtype=torch.bool)
    for user, item in zip(split.train["user_id"], split.train["item_id"], strict=True):
        seen[fitted.spec.user_ids.index(user), fitted.item_ids.index(item)] = True
    top = torch.topk(scores.masked_fill(seen, -torch.inf), k=5, dim=1).indices
    user_parity = torch.tensor([int(u[1:]) % 2 for u in fitted.spec.user_ids]).unsqueeze(1)
    agreement = (item_parity[top] == user_parity).float().mean().item()
    assert agreement > 0.9, agreement
    assert fitted.val_metrics["val_ndcg@10"] > 0.3
    assert fitted.best_checkpoint is not None and fitted.best_checkpoint.is_file()


def test_row_weights_weigh_each_rows_loss() -> None:
    catalogue, users = unit(10, 4, 6), unit(3, 4, 7)
    target = torch.tensor([1, 2, 3])
    per_row = [
        full_softmax_loss(users[i : i + 1], catalogue, target[i : i + 1], torch.tensor(4.0)).item()
        for i in range(3)
    ]
    only_first = full_softmax_loss(users, catalogue, target, torch.tensor(4.0), torch.tensor([1.0, 0.0, 0.0]))
    assert only_first.item() == pytest.approx(per_row[0], rel=1e-5)
    halves = sampled_softmax_loss(
        users, catalogue[target], target, torch.tensor(4.0), row_weights=torch.tensor([1.0, 1.0, 2.0])
    )
    rows = F.cross_entropy(users @ catalogue[target].T * 4.0, torch.arange(3), reduction="none")
    assert halves.item() == pytest.approx(((rows[0] + rows[1] + 2 * rows[2]) / 4).item(), rel=1e-5)
