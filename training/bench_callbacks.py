"""The Lightning callback behind `explainrec bench train` (training/bench_train.py)."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
import torch


class EpochThroughput(L.Callback):
    """Rows trained per second in each epoch, and validation NDCG with wall time since fit start."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.fit_start = time.perf_counter()
        self.epoch_start = self.last_batch_end = self.fit_start
        self.samples = 0
        self.epochs: list[dict[str, float]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_start = self.last_batch_end = time.perf_counter()
        self.samples = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.samples += _rows(batch)
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            torch.cuda.synchronize()  # kernels are asynchronous: count them in this epoch
        self.last_batch_end = time.perf_counter()

    # Not on_validation_epoch_end: callbacks run that hook before the module logs the metric.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        seconds = max(self.last_batch_end - self.epoch_start, 1e-9)
        row = {
            "epoch": float(trainer.current_epoch),
            "samples": float(self.samples),
            "train_seconds": round(seconds, 3),
            "samples_per_s": round(self.samples / seconds, 1),
            "elapsed_s": round(time.perf_counter() - self.fit_start, 2),
        }
        if self.monitor in trainer.callback_metrics:
            row[self.monitor] = round(float(trainer.callback_metrics[self.monitor]), 5)
        self.epochs.append(row)
        print(
            f"epoch {int(row['epoch'])}: {row['samples_per_s']:.0f} samples/s, "
            f"{self.monitor}={row.get(self.monitor, float('nan')):.4f}, {row['elapsed_s']:.1f}s",
            file=sys.stderr,
            flush=True,
        )


def _rows(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, list | tuple) and batch:
        return _rows(batch[0])
    if isinstance(batch, dict) and batch:
        return _rows(next(iter(batch.values())))
    return 0
