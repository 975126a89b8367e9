"""Metrics against values computed by hand on a 3-user, 5-item case."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from training.evaluation.metrics import evaluate_recommender, top_k


class FixedScores:
    """A recommender whose scores are given: the harness, not the model, is under test here."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = torch.tensor(scores, dtype=torch.float32)

    def fit(self, train: object) -> None:
        return None

    def score(self, user_indices: np.ndarray) -> torch.Tensor:
        return self.scores[torch.from_numpy(np.asarray(user_indices))]


def _csr(rows: list[list[int]], n_items: int = 5) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for user, items in enumerate(rows):
        dense[user, items] = 1.0
    return sp.csr_matrix(dense)


# Every user scores items 0..4 as 5, 4, 3, 2, 1. User 0 knows item 0 and holds out {1, 3};
# user 1 knows nothing and holds out {4}; user 2 holds out nothing, so is not evaluated.
SCORES = np.tile([5.0, 4.0, 3.0, 2.0, 1.0], (3, 1))
KNOWN = _csr([[0], [], []])
TARGETS = _csr([[1, 3], [4], []])


def test_metrics_match_hand_computed_values() -> None:
    m = evaluate_recommender(FixedScores(SCORES), TARGETS, KNOWN, ks=(2, 3), batch_size=2)
    # User 0 ranks 1, 2, 3, 4 (item 0 masked): hits at ranks 1 and 3. User 1 ranks 0, 1, 2: no hit.
    idcg2 = 1.0 + 1.0 / math.log2(3)
    expected = {
        "precision@2": (1 / 2 + 0) / 2,
        "recall@2": (1 / 2 + 0) / 2,
        "f1@2": (0.5 + 0) / 2,
        "ndcg@2": (1.0 / idcg2 + 0) / 2,
        "map@2": ((1.0 / 1) / 2 + 0) / 2,
        "hitrate@2": 0.5,
        "mrr@2": 0.5,
        "coverage@2": 3 / 5,  # {1, 2} and {0, 1}
        "precision@3": (2 / 3 + 0) / 2,
        "recall@3": (1.0 + 0) / 2,
        "f1@3": (2 * (2 / 3) * 1.0 / (2 / 3 + 1.0) + 0) / 2,
        "ndcg@3": ((1.0 + 1.0 / math.log2(4)) / idcg2 + 0) / 2,
        "map@3": ((1.0 + 2 / 3) / 2 + 0) / 2,
        "hitrate@3": 0.5,
        "mrr@3": 0.5,
        "coverage@3": 4 / 5,
    }
    assert set(m) == set(expected)
    for name, value in expected.items():
        assert m[name] == pytest.approx(value), name


def test_batching_does_not_change_results() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 30))
    known = sp.random(50, 30, density=0.2, random_state=1, format="csr")
    targets = sp.random(50, 30, density=0.1, random_state=2, format="csr")
    targets = (targets - targets.multiply(known > 0)).tocsr()
    one = evaluate_recommender(FixedScores(scores), targets, known, batch_size=50)
    many = evaluate_recommender(FixedScores(scores), targets, known, batch_size=7)
    assert one == pytest.approx(many)


def test_known_items_are_never_recommended() -> None:
    known = _csr([[0, 1], [4], [2]])
    top = top_k(torch.tensor(SCORES, dtype=torch.float32), known, 3)
    assert top.tolist() == [[2, 3, 4], [0, 1, 2], [0, 1, 3]]


def test_perfect_ranking_scores_one() -> None:
    scores = np.array([[1.0, 0.0, 0.9, 0.0, 0.0]])
    m = evaluate_recommender(FixedScores(scores), _csr([[0, 2]]), _csr([[]]), ks=(2,))
    for name in ("recall@2", "ndcg@2", "precision@2", "map@2", "hitrate@2", "mrr@2", "f1@2"):
        assert m[name] == pytest.approx(1.0), name


def test_bad_scores_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate_recommender(FixedScores(SCORES[:, :4]), TARGETS, KNOWN)
    nan_scores = SCORES.copy()
    nan_scores[0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_recommender(FixedScores(nan_scores), TARGETS, KNOWN)
    with pytest.raises(ValueError, match="no user"):
        evaluate_recommender(FixedScores(SCORES), _csr([[], [], []]), KNOWN)
