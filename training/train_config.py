"""The schema of a training config (`configs/*.yaml`), read with `training.config.load_config`.

    config = load_config(Path("configs/ml100k.yaml"), TrainConfig, ["model.dim=128"])

Every section forbids unknown keys, so a typo in a YAML file or a `--set` override is an error
that names the key instead of a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from embeddings.towers import settings_problem


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Section):
    kind: Literal["demo", "movielens", "csv"] = "demo"
    # Raw data for `load_dataset` (MovieLens folder, CSV folder); ignored for the demo shop.
    path: Path | None = None
    # A folder written by `explainrec prepare`; when set it is read instead of `kind`/`path`.
    prepared: Path | None = None
    protocol: Literal["random", "temporal", "global-time", "cold-start"] = "random"
    split_seed: int = 0
    # Demo shop size (small sizes keep tests fast).
    demo_users: int = 3000
    demo_items: int = 2000


class FeatureSection(_Section):
    max_history: int = Field(default=50, ge=0)
    use_text: bool = True
    price_buckets: int = Field(default=8, ge=2)
    numeric_buckets: int = Field(default=6, ge=2)
    # Per-item dropout of training histories (besides removing the target item), so the tower
    # learns to recommend from partial histories, as after a few clicks in a fresh session.
    history_dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    # Probability that a training row sees no interests / only the top categories as a
    # multi-hot (the shape of a profile form's "interests" answer) instead of the full distribution.
    interests_dropout: float = Field(default=0.3, ge=0.0, le=1.0)
    interests_as_form: float = Field(default=0.3, ge=0.0, le=1.0)
    # Fraction of training rows that see neither id nor history nor interests, only the
    # profile: the inputs of a brand-new user, so the profile path is trained on its own.
    profile_only_rows: float = Field(default=0.0, ge=0.0, le=1.0)


class ModelSection(_Section):
    """The tunable part of `embeddings.towers.TwoTowerConfig` (sizes come from the data)."""

    dim: int = Field(default=64, ge=2)
    hidden: int = Field(default=256, ge=2)
    id_dim: int = Field(default=64, ge=4)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    use_user_id: bool = True
    use_item_id: bool = True
    use_content: bool = True
    use_profile: bool = True
    use_history: bool = True
    history_pooling: Literal["mean", "attention"] = "mean"
    history_item_embedding: bool = False
    history_item_norm: Literal["mean", "sqrt"] = "mean"
    history_tied: bool = True
    item_bias: bool = False
    item_bias_init: float = Field(default=0.0, ge=0.0)
    user_id_dropout: float = Field(default=0.2, ge=0.0, le=1.0)
    temperature: float = Field(default=0.05, gt=0.0)
    learn_temperature: bool = True
    # "cosine" trains on unit vectors; "dot" on raw inner products (embeddings/towers.py).
    similarity: Literal["cosine", "dot"] = "cosine"
    # A full-width linear path (history embedding, item-id embedding; embeddings/towers.py).
    wide: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ModelSection:
        # TwoTowerModel's own rules, caught while the config is read.
        problem = settings_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self


class LossSection(_Section):
    # "pairs": one row per (user, positive item), the positive against sampled or all items.
    # "multinomial": one row per user, a softmax over the whole catalogue with every training
    # positive as a target (Mult-DAE, Liang et al. 2018): the user's history is the input, so
    # each epoch is one pass over users, and history dropout makes it a denoising objective.
    objective: Literal["pairs", "multinomial"] = "pairs"
    # Subtract log(expected candidate count) from each logit: in-batch negatives are drawn by
    # popularity, and without the correction popular items are over-penalised.
    logq_correction: bool = True
    # Extra negatives drawn uniformly from the catalogue per batch (shared by all rows);
    # -1 uses the whole catalogue (exact softmax, affordable for small catalogues).
    uniform_negatives: int = Field(default=0, ge=-1)
    in_batch_negatives: bool = True
    # Weight each (user, item) row by n_user^-power: 0 lets heavy users dominate (one row per
    # positive), 1 gives every user equal total weight, as the per-user ranking metrics do.
    user_weight_power: float = Field(default=0.0, ge=0.0, le=1.0)
    # Multinomial only: the weight of targets that are still in the (dropped-out) input history;
    # below 1 the loss emphasises the hidden items (emphasised denoising, Steck 2020).
    kept_target_weight: float = Field(default=1.0, ge=0.0, le=1.0)


class OptimSection(_Section):
    lr: float = Field(default=2e-3, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    batch_size: int = Field(default=512, ge=2)
    # Multiply the learning rate by this after every epoch (1.0 = constant); a decaying rate
    # settles the noisy epoch-to-epoch validation swings of a constant one.
    lr_decay: float = Field(default=1.0, gt=0.0, le=1.0)


class TrainerSection(_Section):
    max_epochs: int = Field(default=30, ge=1)
    patience: int = Field(default=5, ge=1)
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = Field(default=1, ge=1)
    strategy: str = "auto"
    # None picks bf16-mixed on a GPU and 32-true on a CPU.
    precision: str | None = None
    num_workers: int = Field(default=0, ge=0)
    check_val_every_n_epoch: int = Field(default=1, ge=1)
    # Stop after this many optimiser steps (tests, smoke runs); None = no limit.
    max_steps: int | None = None
    # Validation users are subsampled to this many (full ranking is per user); None = all.
    max_val_users: int | None = 2000
    deterministic: bool = False


class TrainConfig(_Section):
    name: str = "model"
    seed: int = 0
    data: DataSection = DataSection()
    features: FeatureSection = FeatureSection()
    model: ModelSection = ModelSection()
    loss: LossSection = LossSection()
    optim: OptimSection = OptimSection()
    trainer: TrainerSection = TrainerSection()
    # Rank cut-off of the validation metric that picks the best checkpoint.
    val_k: int = Field(default=10, ge=1)
