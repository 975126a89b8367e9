"""The harness end to end on a real split of a small planted data set: indexing, masking of
known items, tuning on validation, one test evaluation, and the JSON report's schema."""

from __future__ import annotations

import numpy as np
import pytest

from explainrec.errors import ConfigError
from training.data.schema import Dataset
from training.data.splits import make_split
from training.evaluation.data import EvalData, build_eval_data
from training.evaluation.harness import evaluate_model
from training.evaluation.models import MODELS, resolve_models
from training.evaluation.report import format_table, report_json

N_USERS, N_ITEMS = 60, 40  # the planted data set's size (conftest.py)


@pytest.fixture(scope="module")
def data(planted: Dataset) -> EvalData:
    return build_eval_data(planted, make_split(planted, "random", seed=0))


def test_known_and_target_matrices_follow_the_split(data: EvalData) -> None:
    assert data.train.matrix.shape == (N_USERS, N_ITEMS)
    assert data.train.matrix.nnz == len(data.split.train)
    assert data.valid_targets.nnz == len(data.split.valid)
    assert data.test_targets.nnz == len(data.split.test)
    # Testing excludes train and validation items; neither may overlap the test targets.
    assert data.test_known.nnz == len(data.split.train) + len(data.split.valid)
    assert data.test_targets.multiply(data.test_known).nnz == 0
    assert data.counts() == {
        "train": len(data.split.train),
        "valid": len(data.split.valid),
        "test": len(data.split.test),
        "users": N_USERS,
        "items": N_ITEMS,
    }


def test_tuned_models_beat_popularity_on_the_planted_split(data: EvalData) -> None:
    popular = evaluate_model(MODELS["popular"], data, n_trials=5, progress=False)
    ease = evaluate_model(MODELS["ease"], data, n_trials=3, progress=False)
    assert popular.trials == 1  # nothing to tune
    assert ease.trials == 3
    assert ease.valid_metrics["ndcg@10"] >= popular.valid_metrics["ndcg@10"]
    assert ease.metrics["ndcg@10"] > 1.5 * popular.metrics["ndcg@10"]
    assert set(ease.params) == {"l2"}
    assert ease.fit_seconds >= 0.0


def test_report_has_the_documented_schema(data: EvalData) -> None:
    result = evaluate_model(MODELS["itemknn"], data, n_trials=1, progress=False)
    document = report_json("planted", "random", data.counts(), [result])
    assert set(document) == {"dataset", "protocol", "split", "results"}
    assert set(document["split"]) == {"train", "valid", "test", "users", "items"}
    entry = document["results"][0]
    assert entry["model"] == "itemknn"
    required = {"recall@10", "ndcg@10", "recall@20", "ndcg@20", "precision@10", "map@10", "coverage@10"}
    required.add("f1@10")
    assert required <= set(entry["metrics"])
    assert all(isinstance(v, float) for v in entry["metrics"].values())
    assert isinstance(entry["fit_seconds"], float)
    assert "itemknn" in format_table([result])


def test_cold_start_models_rank_users_without_history(planted: Dataset) -> None:
    data = build_eval_data(planted, make_split(planted, "cold-start", seed=0, cold_frac=0.3))
    test_users = np.flatnonzero(np.diff(data.test_targets.indptr) > 0)
    assert test_users.size > 0
    assert data.test_known[test_users].nnz == 0  # cold users have nothing to exclude
    demographic = evaluate_model(MODELS["demographic-popular"], data, n_trials=4, progress=False)
    popular = evaluate_model(MODELS["popular"], data, n_trials=1, progress=False)
    # Gender gives away the planted parity, so the profile beats global popularity.
    assert demographic.metrics["ndcg@10"] > popular.metrics["ndcg@10"]


def test_model_selection_per_protocol() -> None:
    assert resolve_models("all", "cold-start") == ["two-tower", "popular", "demographic-popular"]
    assert resolve_models("ease, ials,ease", "random") == ["ease", "ials"]
    assert "lightfm" in resolve_models("all", "temporal")
    with pytest.raises(ConfigError, match="cannot rank"):
        resolve_models("ease", "cold-start")
    with pytest.raises(ConfigError, match="unknown model"):
        resolve_models("sasrec", "random")
