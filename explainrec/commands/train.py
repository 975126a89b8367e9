"""`explainrec train`: fit the two-tower model on the configured data and write a bundle.

    explainrec train --config configs/demo.yaml
    explainrec train --config configs/ml100k.yaml --set trainer.max_epochs=5 --set model.dim=128
    explainrec train --config configs/ml100k.yaml --set data.prepared=/tmp/ml100k --out artifacts

Writes `<out>/bundles/<version>/` (and points `<out>/bundles/LATEST` at it), the best
checkpoint and CSV logs under `<out>/runs/`, and prints the validation metrics.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from explainrec.cli_options import add_overrides_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, required=True, help="training config YAML, e.g. configs/demo.yaml"
    )
    add_overrides_argument(parser, "override a config value, e.g. --set model.dim=128 (repeatable)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts"),
        help="output root: bundles/, runs/ and cache/ go here (default: artifacts)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


def run(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.train import train
    from training.train_config import TrainConfig

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = load_config(args.config, TrainConfig, args.overrides)
    started = time.perf_counter()
    print(f"train: {config.name} on {config.data.kind} ({config.data.protocol} split)", file=sys.stderr)
    result = train(config, args.out, progress=not args.no_progress)
    if result.bundle_dir is None:
        # A non-zero DDP rank: rank 0 reports and writes the bundle.
        return 0
    for name, value in sorted(result.metrics.items()):
        print(f"{name:>18}: {value:.4f}")
    print(f"best checkpoint: {result.best_checkpoint}")
    print(f"bundle: {result.bundle_dir}  ({time.perf_counter() - started:.1f}s in all)")
    return 0
