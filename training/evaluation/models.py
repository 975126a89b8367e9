"""The evaluated models by name: how to build each from parameters, and what to tune.

Search spaces live here next to the builders (they are part of what a model is); how many
trials each gets is the config's business (`configs/evaluate/*.yaml`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from explainrec.errors import ConfigError
from training.baselines.demographic import DemographicPopular
from training.baselines.ease import EASE
from training.baselines.implicit_models import BPR, IALS
from training.baselines.itemknn import ItemKNN
from training.baselines.lightfm_model import LightFMWarp
from training.baselines.popular import MostPopular
from training.baselines.segment import SegmentPopular
from training.evaluation.data import EvalData
from training.evaluation.recommender import Recommender
from training.tuning import Choice, FloatRange, IntRange, SearchSpace

# (params, seed, data, settings) -> an unfitted model. `settings` carries per-model config
# such as the two-tower's base training config path.
Builder = Callable[[dict[str, Any], int, EvalData, Mapping[str, Any]], Recommender]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Builder
    space: SearchSpace = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # Defaults that depend on the run's settings (the two-tower's base config); they win over `defaults`.
    settings_defaults: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    # A search space that depends on the run's settings; it replaces `space`.
    settings_space: Callable[[Mapping[str, Any]], SearchSpace] | None = None

    def space_for(self, settings: Mapping[str, Any]) -> SearchSpace:
        return self.settings_space(settings) if self.settings_space is not None else self.space

    def first_trial(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters tried first: the model's own defaults."""
        extra = self.settings_defaults(settings) if self.settings_defaults is not None else {}
        return {**self.defaults, **extra}


def _two_tower_builder(ids_only: bool) -> Builder:
    def build(params: dict[str, Any], seed: int, data: EvalData, settings: Mapping[str, Any]) -> Recommender:
        # Imported here: Lightning is only loaded when a two-tower model is evaluated.
        from training.evaluation.two_tower import TwoTowerRecommender

        if "config" not in settings:
            raise ConfigError("the two-tower models need a base training config (settings['config'])")
        return TwoTowerRecommender(
            data,
            settings["config"],
            params,
            seed=seed,
            ids_only=ids_only,
            progress=bool(settings.get("progress", False)),
            text_cache_dir=settings.get("text_cache_dir"),
        )

    return build


# The two-tower spaces are dotted TrainConfig keys, applied as `--set` style overrides.
_TWO_TOWER_SPACE: SearchSpace = {
    "optim.lr": FloatRange(5e-4, 1e-2, log=True),
    "optim.weight_decay": FloatRange(1e-6, 1e-2, log=True),
    "model.temperature": FloatRange(0.02, 0.2, log=True),
    "model.dropout": FloatRange(0.0, 0.3),
}


MF_DEFAULTS: dict[str, Any] = {
    "optim.lr": 0.01,
    "optim.weight_decay": 1e-4,
    "model.temperature": 0.05,
    "model.dropout": 0.1,
}


# The full model also tunes its denoising strength (the ids-only `mf` has no history to drop).
_TWO_TOWER_FULL_SPACE: SearchSpace = {
    **_TWO_TOWER_SPACE,
    "features.history_dropout": FloatRange(0.2, 0.7),
}


# The wide dot-similarity recipe trains on raw inner products at a fixed temperature near 1 and
# needs smaller steps; it also tunes how much the items still in the input count.
_TWO_TOWER_DOT_SPACE: SearchSpace = {
    "optim.lr": FloatRange(1e-4, 2e-3, log=True),
    "optim.weight_decay": FloatRange(1e-6, 1e-2, log=True),
    "model.temperature": FloatRange(0.5, 2.0, log=True),
    "features.history_dropout": FloatRange(0.2, 0.7),
    "loss.kept_target_weight": FloatRange(0.1, 1.0),
}


def _two_tower_space(settings: Mapping[str, Any]) -> SearchSpace:
    config = settings.get("config")
    if config is not None and config.model.similarity == "dot":
        return _TWO_TOWER_DOT_SPACE
    return _TWO_TOWER_FULL_SPACE


def _base_config_values(
    space_for: Callable[[Mapping[str, Any]], SearchSpace],
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The base training config's own values of the keys its space tunes, so trial 0 is that config."""

    def values_of(settings: Mapping[str, Any]) -> dict[str, Any]:
        if "config" not in settings:
            return {}
        values: dict[str, Any] = {}
        for dotted in space_for(settings):
            node: Any = settings["config"]
            for part in dotted.split("."):
                node = getattr(node, part)
            values[dotted] = node
        return values

    return values_of


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "two-tower",
            _two_tower_builder(ids_only=False),
            _TWO_TOWER_FULL_SPACE,
            settings_defaults=_base_config_values(_two_tower_space),
            settings_space=_two_tower_space,
        ),
        ModelSpec(
            "mf",
            _two_tower_builder(ids_only=True),
            _TWO_TOWER_SPACE,
            # Its own starting point: the cosine MF ablation does not share a dot recipe's settings.
            MF_DEFAULTS,
        ),
        ModelSpec("popular", lambda p, s, d, c: MostPopular()),
        ModelSpec(
            "segment-popular",
            lambda p, s, d, c: SegmentPopular(seed=s, **p),
            {"n_segments": IntRange(2, 32, log=True)},
            {"n_segments": 8},
        ),
        ModelSpec(
            "itemknn",
            lambda p, s, d, c: ItemKNN(**p),
            {"k": IntRange(10, 500, log=True), "shrink": FloatRange(0.0, 200.0)},
            {"k": 100, "shrink": 10.0},
        ),
        ModelSpec(
            "ease", lambda p, s, d, c: EASE(**p), {"l2": FloatRange(1.0, 5000.0, log=True)}, {"l2": 500.0}
        ),
        ModelSpec(
            "ials",
            lambda p, s, d, c: IALS(seed=s, **p),
            {
                "factors": IntRange(16, 256, log=True),
                "regularization": FloatRange(1e-3, 10.0, log=True),
                "alpha": FloatRange(0.5, 50.0, log=True),
                "iterations": IntRange(5, 30),
            },
            {"factors": 64, "regularization": 0.05, "alpha": 10.0, "iterations": 15},
        ),
        ModelSpec(
            "bpr",
            lambda p, s, d, c: BPR(seed=s, **p),
            {
                "factors": IntRange(16, 256, log=True),
                "learning_rate": FloatRange(1e-3, 0.2, log=True),
                "regularization": FloatRange(1e-5, 0.1, log=True),
                "iterations": IntRange(20, 200, log=True),
            },
            {"factors": 64, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
        ),
        ModelSpec(
            "lightfm",
            lambda p, s, d, c: LightFMWarp(seed=s, **p),
            {
                "no_components": IntRange(16, 128, log=True),
                "learning_rate": FloatRange(5e-3, 0.1, log=True),
                "item_alpha": FloatRange(1e-8, 1e-3, log=True),
                "epochs": IntRange(5, 60, log=True),
            },
            {"no_components": 64, "learning_rate": 0.05, "item_alpha": 1e-6, "epochs": 30},
        ),
        ModelSpec(
            "demographic-popular",
            lambda p, s, d, c: DemographicPopular(**p),
            {
                "attributes": Choice(
                    [
                        ("gender",),
                        ("age",),
                        ("occupation",),
                        ("gender", "age"),
                        ("age", "occupation"),
                        ("gender", "age", "occupation"),
                    ]
                ),
                "shrinkage": FloatRange(0.0, 200.0),
            },
            {"attributes": ("gender", "age"), "shrinkage": 10.0},
        ),
    )
}

# Which models can rank under each protocol: cold users have no history, so only models
# that read a profile (or ignore the user) apply there.
PROTOCOL_MODELS: dict[str, tuple[str, ...]] = {
    "random": ("two-tower", "mf", "popular", "segment-popular", "itemknn", "ease", "ials", "bpr", "lightfm"),
    "temporal": (
        "two-tower",
        "mf",
        "popular",
        "segment-popular",
        "itemknn",
        "ease",
        "ials",
        "bpr",
        "lightfm",
    ),
    "cold-start": ("two-tower", "popular", "demographic-popular"),
}


def resolve_models(selection: str, protocol: str) -> list[str]:
    """`all` or a comma list -> model names valid for `protocol` (ConfigError otherwise)."""
    allowed = PROTOCOL_MODELS.get(protocol)
    if allowed is None:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOL_MODELS)}")
    if selection.strip() == "all":
        return list(allowed)
    names = [n.strip() for n in selection.split(",") if n.strip()]
    if not names:
        raise ConfigError("--models is empty; give 'all' or a comma list such as 'ease,ials'")
    for name in names:
        if name not in MODELS:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        if name not in allowed:
            raise ConfigError(
                f"model {name!r} cannot rank under the {protocol} protocol; use {', '.join(allowed)}"
            )
    return list(dict.fromkeys(names))
