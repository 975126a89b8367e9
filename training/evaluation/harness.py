"""Tune each model on the validation split, then rank the test split once with the winner.

The winner is the fitted model of the best trial (fitted on train only, with the tuning seed),
kept in memory: identical to refitting the best parameters on train, without paying for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from training.evaluation.data import EvalData
from training.evaluation.metrics import DEFAULT_KS, evaluate_recommender
from training.evaluation.models import ModelSpec
from training.evaluation.recommender import Recommender
from training.tuning import tune

log = logging.getLogger(__name__)


@dataclass
class ModelResult:
    model: str
    metrics: dict[str, float]  # test split
    valid_metrics: dict[str, float]
    params: dict[str, Any]
    fit_seconds: float  # the winning fit
    trials: int
    tuning_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metrics": self.metrics,
            "fit_seconds": round(self.fit_seconds, 3),
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
            "trials": self.trials,
            "tuning_seconds": round(self.tuning_seconds, 3),
            "valid_metrics": self.valid_metrics,
        }


@dataclass
class _Best:
    value: float = float("-inf")
    model: Recommender | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0


def evaluate_model(
    spec: ModelSpec,
    data: EvalData,
    n_trials: int,
    seed: int = 0,
    metric: str = "ndcg@10",
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 512,
    settings: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> ModelResult:
    """Tune `spec` on validation in `n_trials` trials, then evaluate the best fit on test."""
    best = _Best()
    started = time.perf_counter()

    def objective(params: dict[str, Any]) -> float:
        model = spec.build(params, seed, data, settings or {})
        fit_start = time.perf_counter()
        model.fit(data.train)
        fit_seconds = time.perf_counter() - fit_start
        metrics = evaluate_recommender(model, data.valid_targets, data.valid_known, ks, batch_size)
        if metric not in metrics:
            raise ValueError(f"tuning metric {metric!r} is not computed; choose from {sorted(metrics)}")
        value = metrics[metric]
        log.info("%s trial %s: valid %s=%.4f fit %.1fs", spec.name, params, metric, value, fit_seconds)
        if value > best.value:
            best.value, best.model, best.metrics, best.fit_seconds = value, model, metrics, fit_seconds
        return value

    space = spec.space_for(settings or {})
    n = n_trials if space else 1
    defaults = spec.first_trial(settings or {})
    tuning = tune(objective, space, defaults, n, seed=seed, desc=spec.name, progress=progress)
    assert best.model is not None  # tune() ran at least one trial
    test_metrics = evaluate_recommender(best.model, data.test_targets, data.test_known, ks, batch_size)
    return ModelResult(
        model=spec.name,
        metrics=test_metrics,
        valid_metrics=best.metrics,
        params=tuning.best_params,
        fit_seconds=best.fit_seconds,
        trials=tuning.n_trials,
        tuning_seconds=time.perf_counter() - started,
    )
