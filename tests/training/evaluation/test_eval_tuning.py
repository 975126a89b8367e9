"""The Optuna search: defaults first, seeded, choices of any type, and it can improve."""

from __future__ import annotations

from typing import Any

import pytest

from training.tuning import Choice, FloatRange, IntRange, tune

SPACE = {"x": FloatRange(-5.0, 5.0), "n": IntRange(1, 8, log=True), "mode": Choice([("a",), ("a", "b")])}
DEFAULTS = {"x": 4.0, "n": 8, "mode": ("a",)}


def objective(params: dict[str, Any]) -> float:
    return -((params["x"] - 1.0) ** 2) - abs(params["n"] - 2) + len(params["mode"])


def test_first_trial_is_the_defaults_and_best_is_the_max() -> None:
    result = tune(objective, SPACE, DEFAULTS, n_trials=25, seed=0, progress=False)
    assert result.history[0][0] == DEFAULTS
    assert result.n_trials == 25
    assert result.best_value == max(v for _, v in result.history)
    assert result.best_value > objective(DEFAULTS)
    assert result.best_params["mode"] in SPACE["mode"].options


def test_same_seed_same_search() -> None:
    a = tune(objective, SPACE, DEFAULTS, n_trials=6, seed=3, progress=False)
    b = tune(objective, SPACE, DEFAULTS, n_trials=6, seed=3, progress=False)
    assert a.history == b.history


def test_one_trial_or_empty_space_means_defaults() -> None:
    assert tune(objective, SPACE, DEFAULTS, n_trials=1, progress=False).best_params == DEFAULTS
    result = tune(lambda p: 1.0, {}, {"k": 3}, n_trials=10, progress=False)
    assert result.best_params == {"k": 3}
    assert result.n_trials == 1


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        tune(objective, SPACE, DEFAULTS, n_trials=0, progress=False)
