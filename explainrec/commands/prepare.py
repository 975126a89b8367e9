"""`explainrec prepare`: raw data -> validated canonical Parquet tables plus a report.

    explainrec prepare --dataset movielens --path ../shared/data/ml-100k --out artifacts/data/ml100k
    explainrec prepare --dataset movielens --download ml-1m --path data/raw --out artifacts/data/ml1m
    explainrec prepare --dataset demo --out artifacts/data/demo [--seed 0]
    explainrec prepare --dataset csv --config configs/data/csv-example.yaml --out artifacts/data/shop

Writes users/items/interactions.parquet and prepare_report.json into --out and prints the
summary: counts, density, date range and every dropped or fixed row count with its reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=["movielens", "demo", "csv"],
        required=True,
        help="source kind: a MovieLens release, the built-in demo shop, or your CSV/Parquet",
    )
    parser.add_argument(
        "--path",
        type=Path,
        default=None,
        help="movielens: the unzipped release folder (with --download: where to put it); "
        "csv: base folder of the files (default: the mapping file's folder)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder for the Parquet tables")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="csv: YAML column mapping (see configs/data/csv-example.yaml)",
    )
    parser.add_argument(
        "--download",
        default=None,
        metavar="NAME",
        help="movielens: fetch the official GroupLens zip first, e.g. ml-1m, ml-latest-small",
    )
    parser.add_argument("--seed", type=int, default=0, help="demo: generator seed (default 0)")
    parser.add_argument("--users", type=int, default=3000, help="demo: number of shoppers (default 3000)")
    parser.add_argument("--items", type=int, default=2000, help="demo: number of products (default 2000)")
    parser.add_argument(
        "--strict", action="store_true", help="treat every row that would be dropped as an error instead"
    )


def _options(args: argparse.Namespace) -> dict[str, object]:
    from explainrec.errors import ConfigError

    opts: dict[str, object] = {"strict": args.strict}
    if args.dataset == "demo":
        opts.update(seed=args.seed, n_users=args.users, n_items=args.items)
    elif args.dataset == "movielens":
        if args.download:
            from training.data.loaders.download import check_name

            opts["download"] = check_name(args.download)
    elif args.dataset == "csv":
        opts["config"] = args.config
    if args.download and args.dataset != "movielens":
        raise ConfigError("--download only works with --dataset movielens")
    if args.config and args.dataset != "csv":
        raise ConfigError("--config only works with --dataset csv")
    return opts


def run(args: argparse.Namespace) -> int:
    from training.data.io import write_dataset, write_json
    from training.data.loaders import load_dataset

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    opts = _options(args)
    started = time.perf_counter()
    print(f"prepare: loading {args.dataset} ...", file=sys.stderr)
    ds, report = load_dataset(args.dataset, args.path, **opts)
    print(
        f"prepare: validated in {time.perf_counter() - started:.1f}s; writing Parquet to {args.out}",
        file=sys.stderr,
    )
    write_dataset(ds, args.out)
    write_json(report.to_dict(), args.out / "prepare_report.json")
    print(report.format_text())
    print(
        f"wrote {args.out}/users.parquet, items.parquet, interactions.parquet, prepare_report.json "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return 0
