"""The Lightning Trainer as a config describes it, plus a callback timing the best epoch."""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from explainrec.errors import ConfigError
from training.train_config import TrainConfig

log = logging.getLogger(__name__)


def precision_for(config: TrainConfig) -> str:
    """bf16 mixed precision on a GPU, full fp32 on a CPU (bf16 there is slower, not faster)."""
    if config.trainer.precision is not None:
        return config.trainer.precision
    on_gpu = torch.cuda.is_available() and config.trainer.accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if on_gpu else "32-true"


class TimeToBest(L.Callback):
    """Wall seconds from fit start to each improvement of `monitor`, and a per-epoch log."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.start = time.perf_counter()
        self.best = -math.inf
        self.seconds_to_best = 0.0
        self.best_epoch = -1
        self.rows: list[dict[str, float]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    # Not on_validation_epoch_end: callbacks' epoch-end hooks run before the module's, which is
    # where the metric is logged, so they would read the previous epoch's value.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        elapsed = time.perf_counter() - self.start
        self.rows.append({"epoch": float(trainer.current_epoch), self.monitor: value, "seconds": elapsed})
        if value > self.best:
            self.best, self.seconds_to_best, self.best_epoch = value, elapsed, trainer.current_epoch
        if trainer.is_global_zero:
            # One line per epoch, so a run without a progress bar still shows where it is.
            log.info(
                "epoch %d: %s=%.4f (best %.4f after %.0fs)",
                trainer.current_epoch,
                self.monitor,
                value,
                self.best,
                elapsed,
            )


# Lightning's rank-zero INFO lines ("GPU available: False", "TPU available", a "💡 Tip" advert for
# its cloud logger) repeat on every fit, once per tuning trial; our own per-epoch line says more.
LIGHTNING_BANNER_LOGGER = "lightning.pytorch.utilities.rank_zero"


def build_trainer(config: TrainConfig, work_dir: Path, progress: bool, callbacks: list[Any]) -> L.Trainer:
    logging.getLogger(LIGHTNING_BANNER_LOGGER).setLevel(logging.WARNING)
    # Lightning calls a torch API it deprecated itself; nothing for a user to act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    monitor = f"val_ndcg@{config.val_k}"
    t = config.trainer
    checkpoint = ModelCheckpoint(
        dirpath=work_dir / "checkpoints",
        filename="best-{epoch}",
        monitor=monitor,
        mode="max",
        save_top_k=1,
        save_weights_only=True,
    )
    stopping = EarlyStopping(monitor=monitor, mode="max", patience=t.patience)
    try:
        return L.Trainer(
            accelerator=t.accelerator,
            devices=t.devices,
            num_nodes=t.num_nodes,
            strategy=t.strategy,
            precision=precision_for(config),  # type: ignore[arg-type]
            max_epochs=t.max_epochs,
            max_steps=-1 if t.max_steps is None else t.max_steps,
            check_val_every_n_epoch=t.check_val_every_n_epoch,
            deterministic=t.deterministic,
            callbacks=[checkpoint, stopping, *callbacks],
            logger=CSVLogger(work_dir, name="logs"),
            enable_progress_bar=progress,
            enable_model_summary=progress,
            log_every_n_steps=10,
            num_sanity_val_steps=0,
            default_root_dir=work_dir,
        )
    except (ValueError, RuntimeError) as exc:
        # Lightning's own message names the bad accelerator / strategy / devices value.
        raise ConfigError(f"trainer settings rejected: {exc}") from exc
