"""The two-tower model and its ids-only `mf` ablation through the same harness as the baselines."""

from __future__ import annotations

import pytest

from explainrec.errors import ConfigError
from training.data.schema import Dataset
from training.data.splits import make_split
from training.evaluation.data import build_eval_data
from training.evaluation.harness import evaluate_model
from training.evaluation.models import MF_DEFAULTS, MODELS
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
DOT_RECIPE = {
    "model.similarity": "dot",
    "model.wide": True,
    "model.history_item_embedding": True,
    "model.history_tied": False,
    "model.temperature": 1.0,
    "model.learn_temperature": False,
    "loss.objective": "multinomial",
    "loss.kept_target_weight": 0.3,
}


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


@pytest.mark.parametrize("recipe", ["cosine", "dot"])
def test_two_tower_ranks_cold_users_from_their_profile(planted: Dataset, recipe: str) -> None:
    data = build_eval_data(planted, make_split(planted, "cold-start", seed=0, cold_frac=0.3))
    # The wide dot recipe: users without history take the profile MLP (the switch in the towers).
    base = BASE if recipe == "cosine" else configured(BASE, {**DOT_RECIPE, "trainer.max_epochs": 15}, seed=0)
    settings = {"config": base, "progress": False}
    two_tower = evaluate_model(MODELS["two-tower"], data, n_trials=1, settings=settings, progress=False)
    popular = evaluate_model(MODELS["popular"], data, n_trials=1, progress=False)
    # Gender gives away the planted parity; only the profile can tell cold users apart.
    assert two_tower.metrics["ndcg@10"] > popular.metrics["ndcg@10"]


def test_missing_base_config_is_a_config_error(planted: Dataset) -> None:
    data = build_eval_data(planted, make_split(planted, "random", seed=0))
    with pytest.raises(ConfigError, match="base training config"):
        evaluate_model(MODELS["mf"], data, n_trials=1, settings={}, progress=False)


def test_first_trials_are_the_base_config_and_the_mf_defaults(planted: Dataset) -> None:
    data = build_eval_data(planted, make_split(planted, "random", seed=0))
    result = evaluate_model(MODELS["two-tower"], data, n_trials=1, settings=SETTINGS, progress=False)
    assert result.params == {
        "optim.lr": BASE.optim.lr,
        "optim.weight_decay": BASE.optim.weight_decay,
        "model.temperature": BASE.model.temperature,
        "model.dropout": BASE.model.dropout,
        "features.history_dropout": BASE.features.history_dropout,
    }
    # The ids-only ablation starts from its own cosine settings, whatever recipe the base is.
    assert MODELS["mf"].first_trial(SETTINGS) == MF_DEFAULTS


def test_a_dot_recipe_is_tuned_in_its_own_space(planted: Dataset) -> None:
    dot = configured(BASE, DOT_RECIPE, seed=0)
    settings = {"config": dot, "progress": False}
    space = MODELS["two-tower"].space_for(settings)
    assert "loss.kept_target_weight" in space and "model.dropout" not in space
    first = MODELS["two-tower"].first_trial(settings)
    assert first["model.temperature"] == 1.0 and first["loss.kept_target_weight"] == 0.3
    data = build_eval_data(planted, make_split(planted, "random", seed=0))
    # mf on a dot base is the cosine ablation (a wide tower needs a history it does not have).
    mf = evaluate_model(MODELS["mf"], data, n_trials=1, settings=settings, progress=False)
    popular = evaluate_model(MODELS["popular"], data, n_trials=1, progress=False)
    assert mf.metrics["ndcg@10"] > popular.metrics["ndcg@10"]
