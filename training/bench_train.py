"""`explainrec bench train`: training throughput and time to the best validation NDCG@10.

    explainrec bench train --config configs/ml100k.yaml --max-epochs 8 --json artifacts/bench/train-cpu.json
    explainrec bench train --config configs/ml100k.yaml --precision bf16-mixed --batch-size 4096 --json OUT

Fits through the public `fit_two_tower` entry point (no bundle is written) with a Lightning
callback that times each training epoch from its first batch to its last (validation left out)
and counts the rows it trained on. A "sample" is one training row: one user for the
multinomial objective, one positive pair for the pairs objective (`sample_unit` says which).
Output:

    {"config", "device", "precision", "batch_size", "sample_unit",
     "epochs": [{"epoch", "samples", "train_seconds", "samples_per_s", "val_ndcg@10", "elapsed_s"}],
     "samples_per_s_median", "best_val_ndcg@10", "best_epoch", "seconds_to_best", "fit_seconds"}
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
from pathlib import Path

from explainrec.cli_options import add_overrides_argument, print_json_report
from explainrec.errors import ConfigError
from explainrec.provenance import environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="training config YAML")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="stop after this many epochs (default: the config's)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="override optim.batch_size")
    parser.add_argument(
        "--precision", default=None, help="Lightning precision, e.g. bf16-mixed on a GPU (default: auto)"
    )
    add_overrides_argument(parser, "any other config override, as for `explainrec train`")


def run(args: argparse.Namespace) -> int:
    # Lightning and torch load here, not at import: `explainrec bench --help` builds this parser.
    import torch

    from training.bench_callbacks import EpochThroughput
    from training.config import load_config
    from training.train import fit_two_tower, load_data
    from training.train_config import TrainConfig
    from training.trainer import precision_for

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    overrides = list(args.overrides)
    if args.max_epochs is not None:
        if args.max_epochs < 1:
            raise ConfigError("--max-epochs must be at least 1")
        overrides.append(f"trainer.max_epochs={args.max_epochs}")
    if args.batch_size is not None:
        if args.batch_size < 2:
            raise ConfigError("--batch-size must be at least 2")
        overrides.append(f"optim.batch_size={args.batch_size}")
    if args.precision is not None:
        overrides.append(f"trainer.precision={args.precision}")
    config = load_config(args.config, TrainConfig, overrides)
    print(f"bench train: {config.name}, up to {config.trainer.max_epochs} epochs", file=sys.stderr)
    ds, split = load_data(config.data, seed=config.seed)
    monitor = f"ndcg@{config.val_k}"
    throughput = EpochThroughput(f"val_{monitor}")
    fitted = fit_two_tower(config, ds, split, progress=False, callbacks=[throughput])
    rates = [e["samples_per_s"] for e in throughput.epochs if e["samples"] > 0]
    scored = [e for e in throughput.epochs if throughput.monitor in e]
    best = max(scored, key=lambda e: e[throughput.monitor]) if scored else None
    report = {
        "config": str(args.config),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu {platform.machine()}",
        "torch_threads": torch.get_num_threads(),
        "precision": precision_for(config),
        "batch_size": config.optim.batch_size,
        "sample_unit": "user" if config.loss.objective == "multinomial" else "positive pair",
        "epochs": throughput.epochs,
        "samples_per_s_median": round(statistics.median(rates), 1) if rates else 0.0,
        f"best_val_{monitor}": best[throughput.monitor] if best else None,
        "best_epoch": int(best["epoch"]) if best else None,
        # Wall time from fit start to the end of the best epoch's validation.
        "seconds_to_best": best["elapsed_s"] if best else None,
        "fit_seconds": round(fitted.fit_seconds, 2),
        "environment": environment(),
    }
    print_json_report(report, args.json)
    return 0
