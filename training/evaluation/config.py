"""The schema of `configs/evaluate/*.yaml`: tuning budgets and evaluation settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from training.config import StrictModel


class SplitOptions(StrictModel):
    """Passed to `training.data.splits.make_split` (each protocol reads the ones it needs)."""

    valid_frac: float = 0.1
    test_frac: float = 0.1
    cold_frac: float = 0.2


class EvaluateConfig(StrictModel):
    seed: int = 0
    # The validation metric every model is tuned on.
    metric: str = "ndcg@10"
    batch_size: int = Field(512, ge=1)
    split: SplitOptions = SplitOptions()
    # Trials per model on the validation split; a model missing here gets `default_trials`.
    trials: dict[str, int] = Field(default_factory=dict)
    default_trials: int = Field(5, ge=1)
    # The training config the two-tower and `mf` entries start from (their data section is
    # ignored: the harness hands them its own data set and split).
    two_tower_config: Path = Path("configs/ml100k.yaml")
    # Cache of MiniLM title embeddings, so tuning trials do not re-embed the catalogue.
    text_cache_dir: Path = Path("artifacts/cache/text")

    @field_validator("trials")
    @classmethod
    def _known_models(cls, value: dict[str, int]) -> dict[str, int]:
        from training.evaluation.models import MODELS

        for name, n in value.items():
            if name not in MODELS:
                raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
            if n < 1:
                raise ValueError(f"trials for {name!r} must be >= 1, got {n}")
        return value

    def trials_for(self, model: str) -> int:
        return self.trials.get(model, self.default_trials)
