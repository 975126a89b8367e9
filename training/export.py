"""Turn a Lightning checkpoint written by `explainrec train` into bundle contents.

    explainrec build --checkpoint artifacts/runs/<run>/checkpoints/best-epoch=12.ckpt --out artifacts/bundles

The checkpoint carries the training config (`TwoTowerModule.on_save_checkpoint`), so the data,
feature spec and towers are rebuilt exactly as training built them, the checkpoint's tower
weights are loaded, and user and item vectors are recomputed from them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from explainrec.errors import ConfigError
from training.config import validate_config
from training.fitted import FittedTwoTower
from training.module import CHECKPOINT_KEY
from training.train import build_towers, bundle_contents, load_data
from training.train_config import TrainConfig

if TYPE_CHECKING:
    from embeddings.bundle import BundleContents

MODEL_PREFIX = "model."


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        raise ConfigError(f"{path}: not a readable PyTorch checkpoint ({reason})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{path}: not a Lightning checkpoint (no state_dict)")
    saved = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(saved, dict) or not saved.get("train_config"):
        raise ConfigError(
            f"{path}: the checkpoint carries no explainrec training config; it was not written by "
            "`explainrec train` (or by a version before checkpoints carried their config)"
        )
    return checkpoint


def contents_from_checkpoint(path: Path, text_cache_dir: Path | None = None) -> BundleContents:
    """Bundle contents from the checkpoint at `path`, with the data its config names."""
    checkpoint = read_checkpoint(path)
    saved = checkpoint[CHECKPOINT_KEY]
    config = validate_config(saved["train_config"], TrainConfig, f"training config in {path}")
    ds, split = load_data(config.data, seed=config.seed)
    spec, model = build_towers(config, ds, split, text_cache_dir)
    state = checkpoint["state_dict"]
    weights = {k.removeprefix(MODEL_PREFIX): v for k, v in state.items() if k.startswith(MODEL_PREFIX)}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise ConfigError(
            f"{path}: the weights do not fit the towers its config builds on today's data "
            f"(has the data at {config.data.path or config.data.prepared} changed?): {exc}"
        ) from exc
    metrics = {k: float(v) for k, v in saved.get("metrics", {}).items()}
    metrics["epochs_to_best"] = float(saved.get("epoch", -1))
    fitted = FittedTwoTower(
        model=model.float().eval(),
        spec=spec,
        users=ds.users,
        train=split.train,
        val_metrics=metrics,
        fit_seconds=0.0,
        best_checkpoint=path,
    )
    started = time.perf_counter()
    contents = bundle_contents(config, ds, split, fitted)
    print(f"rebuilt {config.name} from {path.name} in {time.perf_counter() - started:.1f}s", flush=True)
    return contents
