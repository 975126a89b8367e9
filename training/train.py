"""Train the two-tower model (Lightning) and export it as a bundle.

Public API (the evaluation harness uses the first two; `explainrec train` uses `train`):

    fitted = fit_two_tower(config: TrainConfig, ds: Dataset, split: Split, progress: bool = True,
                           work_dir: Path | None = None, text_cache_dir: Path | None = None)
        -> FittedTwoTower   # best checkpoint by validation NDCG@k, towers on CPU in eval mode
    fitted.score_users(user_ids: Sequence[str], history: pd.DataFrame | None = None) -> torch.Tensor
        # [len(user_ids), n_items] float32 scores, columns = fitted.spec.item_ids order.
        # `history` (user_id, item_id, timestamp[, weight]) is what the user tower reads as each
        # user's past; default = split.train. Unknown / cold users are encoded from profile
        # (+ history when given). Training items are NOT masked: the harness excludes them.
    fitted.item_ids -> list[str]; fitted.fit_seconds -> float; fitted.val_metrics -> dict
    fitted.user_vectors(user_ids, history=None) -> np.ndarray; fitted.item_vectors() -> np.ndarray

    result = train(config: TrainConfig, out_root: Path, progress: bool = True) -> TrainResult
        # loads the data named in config.data, fits, writes a bundle under out_root/"bundles".
        # TrainResult(bundle_dir: Path | None, metrics: dict[str, float], best_checkpoint: Path | None)
        # bundle_dir is None on non-zero DDP ranks (only rank 0 writes).

The `mf` ablation is the same call with ids only, e.g. configs/ml100k_mf.yaml
(model.use_content/use_profile/use_history = false).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from embeddings.features import FeatureSpec
from embeddings.towers import TwoTowerConfig, TwoTowerModel
from explainrec.errors import ConfigError, DataError
from training.datamodule import TwoTowerDataModule, csr, pair_indices, validation_users
from training.features import build_feature_spec, build_item_features, build_user_table, text_dim
from training.fitted import FittedTwoTower
from training.module import TwoTowerModule
from training.train_config import DataSection, TrainConfig
from training.trainer import TimeToBest, build_trainer

if TYPE_CHECKING:
    from embeddings.bundle import BundleContents
    from training.data.schema import Dataset
    from training.data.splits import Split

__all__ = ["FittedTwoTower", "TrainResult", "fit_two_tower", "load_data", "train"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    bundle_dir: Path | None  # None on non-zero DDP ranks, which write nothing
    metrics: dict[str, float]
    best_checkpoint: Path | None


# Model-section settings that shape training, not the towers (so not in TwoTowerConfig).
TRAINING_ONLY_MODEL_KEYS = ("item_bias_init",)


def model_config_for(config: TrainConfig, spec: FeatureSpec, text_width: int) -> TwoTowerConfig:
    return TwoTowerConfig(
        n_users=len(spec.user_ids),
        n_items=len(spec.item_ids),
        n_categories=len(spec.categories),
        n_price_buckets=spec.n_price_buckets,
        text_dim=text_width,
        profile_cardinalities=spec.profile_cardinalities,
        **config.model.model_dump(exclude=set(TRAINING_ONLY_MODEL_KEYS)),
    )


def build_towers(
    config: TrainConfig, ds: Dataset, split: Split, text_cache_dir: Path | None
) -> tuple[FeatureSpec, TwoTowerModel]:
    """The feature spec of `split.train` and freshly initialised towers for it."""
    spec = build_feature_spec(
        ds,
        split.train,
        max_history=config.features.max_history,
        price_buckets=config.features.price_buckets,
        numeric_buckets=config.features.numeric_buckets,
    )
    item_features = build_item_features(ds, spec, text_cache_dir, use_text=config.features.use_text)
    return spec, TwoTowerModel(model_config_for(config, spec, text_dim(item_features)), item_features)


def fit_two_tower(
    config: TrainConfig,
    ds: Dataset,
    split: Split,
    progress: bool = True,
    work_dir: Path | None = None,
    text_cache_dir: Path | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> FittedTwoTower:
    """Train on `split.train`, pick the best epoch by validation NDCG@k on `split.valid`."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    work_dir = Path(tempfile.mkdtemp(prefix="explainrec-train-")) if work_dir is None else work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    spec, model = build_towers(config, ds, split, text_cache_dir)

    train_pairs = pair_indices(spec, split.train)
    valid_pairs = pair_indices(spec, split.valid)
    n_rows = len(spec.user_ids) + 1
    if config.model.use_user_id:
        # Users without training rows keep an all-zero id vector, the same as "no id".
        trained = torch.zeros(n_rows, dtype=torch.bool)
        trained[train_pairs[:, 0]] = True
        with torch.no_grad():
            model.user_id.weight[~trained] = 0.0
    item_counts = torch.bincount(train_pairs[:, 1], minlength=len(spec.item_ids)).float()
    if config.model.item_bias and config.model.item_bias_init > 0:
        # Start the bias coordinate at standardised log-popularity: the softmax would learn it
        # anyway, slowly, and popularity is the strongest single signal in most catalogues.
        log_pop = torch.log1p(item_counts)
        with torch.no_grad():
            model.item_bias.weight[:, 0] = (
                config.model.item_bias_init * (log_pop - log_pop.mean()) / (log_pop.std() + 1e-6)
            )
    module = TwoTowerModule(
        model,
        build_user_table(spec, ds.users, split.train),
        item_counts,
        known=csr(train_pairs, n_rows),
        valid=csr(valid_pairs, n_rows),
        features=config.features,
        loss=config.loss,
        optim=config.optim,
        val_k=config.val_k,
        train_config=config.model_dump(mode="json"),
    )
    # The multinomial objective trains on one row per user, the pairs objective per positive.
    train_rows = torch.unique(train_pairs[:, 0]) if config.loss.objective == "multinomial" else train_pairs
    data = TwoTowerDataModule(
        train_rows,
        validation_users(valid_pairs, config.trainer.max_val_users, config.seed),
        batch_size=config.optim.batch_size,
        num_workers=config.trainer.num_workers,
    )
    monitor = f"val_ndcg@{config.val_k}"
    timer = TimeToBest(monitor)
    trainer = build_trainer(config, work_dir, progress, [timer, *callbacks])
    checkpoint = trainer.checkpoint_callback
    assert isinstance(checkpoint, ModelCheckpoint)
    log.info(
        "training on %d positives of %d users x %d items", len(train_pairs), n_rows - 1, len(spec.item_ids)
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    fit_seconds = time.perf_counter() - started

    best_path = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    if best_path is not None and best_path.is_file():
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    elif trainer.is_global_zero:
        raise DataError("training produced no checkpoint: was there any validation epoch?")
    model = module.model.to("cpu").float().eval()
    metrics = {
        monitor: float(timer.best),
        "epochs_to_best": float(timer.best_epoch),
        "seconds_to_best": float(timer.seconds_to_best),
        "fit_seconds": float(fit_seconds),
        "epochs": float(trainer.current_epoch),
        "temperature": float(model.temperature.detach()),
    }
    return FittedTwoTower(
        model=model,
        spec=spec,
        users=ds.users,
        train=split.train,
        val_metrics=metrics,
        fit_seconds=fit_seconds,
        best_checkpoint=best_path,
        is_global_zero=trainer.is_global_zero,
        history_log=timer.rows,
    )


def load_data(section: DataSection, seed: int = 0) -> tuple[Dataset, Split]:
    """The data set named by a config's `data` section, and its split."""
    from training.data.splits import make_split

    if section.prepared is not None:
        from training.data.io import read_dataset

        ds = read_dataset(section.prepared)
    elif section.kind == "demo":
        from training.data.demo_shop import generate_demo_shop

        ds = generate_demo_shop(seed=seed, n_users=section.demo_users, n_items=section.demo_items)
    else:
        from training.data.loaders import load_dataset

        if section.path is None:
            raise ConfigError(f"data.path is required for data.kind={section.kind!r}")
        ds, _ = load_dataset(section.kind, section.path)
    return ds, make_split(ds, section.protocol, seed=section.split_seed)


def aligned(frame: pd.DataFrame, column: str, ids: Sequence[str]) -> pd.DataFrame:
    indexed = frame.set_index(frame[column].astype(str), drop=False)
    return indexed[~indexed.index.duplicated()].loc[list(ids)].reset_index(drop=True)


def bundle_contents(config: TrainConfig, ds: Dataset, split: Split, fitted: FittedTwoTower) -> BundleContents:
    """Everything a bundle holds, from a fitted model and the data it was trained on."""
    from embeddings.bundle import BundleContents

    spec = fitted.spec
    return BundleContents(
        config=config.model_dump(mode="json"),
        model_config=fitted.model.config,
        model_state={k: v.detach().cpu().contiguous() for k, v in fitted.model.state_dict().items()},
        feature_spec=spec,
        item_vectors=fitted.item_vectors().astype(np.float32),
        user_vectors=fitted.user_vectors(spec.user_ids).astype(np.float32),
        items=aligned(ds.items, "item_id", spec.item_ids),
        users=aligned(ds.users, "user_id", spec.user_ids),
        history=split.train[["user_id", "item_id", "timestamp", "weight"]].reset_index(drop=True),
        metrics=fitted.val_metrics,
        dataset_name=ds.name,
    )


def train(config: TrainConfig, out_root: Path, progress: bool = True) -> TrainResult:
    """Load the configured data, fit, and write a bundle to `out_root/bundles` (rank 0 only)."""
    from embeddings.bundle import write_bundle

    ds, split = load_data(config.data, seed=config.seed)
    run_dir = out_root / "runs" / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    fitted = fit_two_tower(
        config, ds, split, progress=progress, work_dir=run_dir, text_cache_dir=out_root / "cache" / "text"
    )
    if not fitted.is_global_zero:
        return TrainResult(None, fitted.val_metrics, fitted.best_checkpoint)
    contents = bundle_contents(config, ds, split, fitted)
    bundle_dir = write_bundle(contents, out_root / "bundles")
    return TrainResult(bundle_dir, fitted.val_metrics, fitted.best_checkpoint)
