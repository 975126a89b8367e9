"""The two-tower model and its ids-only `mf` ablation through the same harness as the baselines."""

from __future__ import annotations

import pytest

from explainrec.errors import ConfigError
from training.data.schema import Dataset
from training.data.splits import make_split
from training.evaluation.data import build_eval_data
from training.evaluation.harness import evaluate_model
from training.evaluation.models import MODELS
from training.evaluation.two_tower import IDS_ONLY_OVERRIDES, configured
from training.train_config import TrainConfig

# Small and text-free so a fit takes a second or two on a CPU.
BASE = TrainConfig.model_validate(
    {
        "features": {"use_text": False},
        "trainer": {"max_epochs": 5, "patience": 5},
        "optim": {"batch_size": 64},
    }
)
SETTINGS = {"config": BASE, "progress": False}


def test_overrides_and_seed_are_applied_and_validated() -> None:
    config = configured(BASE, {"optim.lr": 0.005, **IDS_ONLY_OVERRIDES}, seed=3)
    assert config.optim.lr == 0.005 and config.seed == 3
    assert not config.model.use_content and not config.model.use_history
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        configured(BASE, {"optim.lrr": 0.1}, seed=0)


def test_two_tower_and_mf_beat_popularity_on_the_planted_split(planted: Dataset) -> None:
    data = build_eval_data(planted, make_split(planted, "random", seed=0))
    popular = evaluate_model(MODELS["popular"], data, n_trials=1, progress=False)
    for name in ("two-tower", "mf"):
        result = evaluate_model(MODELS[name], data, n_trials=1, settings=SETTINGS, progress=False)
        assert result.metrics["ndcg@10"] > 1.5 * popular.metrics["ndcg@10"], name


def test_two_tower_ranks_cold_users_from_their_profile(planted: Dataset) -> None:
    data = build_eval_data(planted, make_split(planted, "cold-start", seed=0, cold_frac=0.3))
    two_tower = evaluate_model(MODELS["two-tower"], data, n_trials=1, settings=SETTINGS, progress=False)
    popular = evaluate_model(MODELS["popular"], data, n_trials=1, progress=False)
    # Gender gives away the planted parity; only the profile can tell cold users apart.
    assert two_tower.metrics["ndcg@10"] > popular.metrics["ndcg@10"]


def test_missing_base_config_is_a_config_error(planted: Dataset) -> None:
    data = build_eval_data(planted, make_split(planted, "random", seed=0))
    with pytest.raises(ConfigError, match="base training config"):
        evaluate_model(MODELS["mf"], data, n_trials=1, settings={}, progress=False)


def test_first_trial_is_the_base_config(planted: Dataset) -> None:
    data = build_eval_data(planted, make_split(planted, "random", seed=0))
    result = evaluate_model(MODELS["mf"], data, n_trials=1, settings=SETTINGS, progress=False)
    assert result.params == {
        "optim.lr": BASE.optim.lr,
        "optim.weight_decay": BASE.optim.weight_decay,
        "model.temperature": BASE.model.temperature,
        "model.dropout": BASE.model.dropout,
    }
