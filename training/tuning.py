"""A small hyper-parameter search with Optuna (TPE, seeded) over declarative search spaces.

    space = {"l2": FloatRange(1.0, 5000.0, log=True)}
    best = tune(objective, space, defaults={"l2": 500.0}, n_trials=10, seed=0)

The first trial always evaluates `defaults`, so a budget of one trial means "the defaults"
and a larger budget can only find something at least as good on the objective.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from tqdm.auto import tqdm


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    options: Sequence[Any]


Param = IntRange | FloatRange | Choice
SearchSpace = Mapping[str, Param]


@dataclass
class TuningResult:
    best_params: dict[str, Any]
    best_value: float
    n_trials: int
    history: list[tuple[dict[str, Any], float]] = field(default_factory=list)


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Draw one parameter set from `space` through an Optuna trial."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, IntRange):
            params[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, FloatRange):
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        else:
            # Optuna stores only primitive choices; others (tuples) are chosen by position.
            index = trial.suggest_categorical(f"{name}#", list(range(len(spec.options))))
            params[name] = spec.options[index]
    return params


def _as_trial_params(space: SearchSpace, params: Mapping[str, Any]) -> dict[str, Any]:
    """Translate concrete params to Optuna's stored names (choices by position) for enqueueing."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if name not in params:
            continue
        if isinstance(spec, Choice):
            out[f"{name}#"] = list(spec.options).index(params[name])
        else:
            out[name] = params[name]
    return out


def tune(
    objective: Callable[[dict[str, Any]], float],
    space: SearchSpace,
    defaults: Mapping[str, Any],
    n_trials: int,
    seed: int = 0,
    desc: str = "tuning",
    progress: bool = True,
) -> TuningResult:
    """Maximise `objective(params)` over `space` in `n_trials` trials (the first = `defaults`)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    params_defaults = dict(defaults)
    if not space:
        value = objective(params_defaults)
        return TuningResult(params_defaults, value, 1, [(params_defaults, value)])
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(_as_trial_params(space, params_defaults))
    history: list[tuple[dict[str, Any], float]] = []
    bar = tqdm(total=n_trials, desc=desc, unit="trial", disable=not progress, leave=False)

    def run_trial(trial: optuna.Trial) -> float:
        params = {**params_defaults, **suggest(trial, space)}
        value = objective(params)
        history.append((params, value))
        bar.update(1)
        bar.set_postfix(best=f"{max(v for _, v in history):.4f}")
        return value

    try:
        study.optimize(run_trial, n_trials=n_trials)
    finally:
        bar.close()
    best_params, best_value = max(history, key=lambda pv: pv[1])
    return TuningResult(best_params, best_value, len(history), history)
