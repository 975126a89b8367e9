"""`explainrec bench index|fold-in|serve|train`: measured numbers for the docs, written as JSON.

    explainrec bench index --items 1000000 --dim 64 --json artifacts/bench/index.json
    explainrec bench fold-in --bundle artifacts/bundles --json artifacts/bench/fold-in.json

`index` and `fold-in` live in `embeddings.benchmark`; `serve` and `train` are provided by
`backend.bench_serve` and `training.bench_train`, each with `add_arguments(parser)` and
`run(args) -> int`, and are loaded only when chosen.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from explainrec.cli_options import print_json_report
from explainrec.errors import ConfigError
from explainrec.provenance import environment

# sub-benchmark -> (module providing add_arguments/run, one-line help)
DELEGATED: dict[str, tuple[str, str]] = {
    "serve": ("backend.bench_serve", "load-test the API (latency, throughput)"),
    "train": ("training.bench_train", "training throughput (samples/s, epoch time)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    index = sub.add_parser("index", help="auto-chosen FAISS index vs exact search on synthetic vectors")
    index.add_argument("--items", type=int, required=True, help="catalogue size N")
    index.add_argument("--dim", type=int, default=64, help="embedding dimension (default 64)")
    index.add_argument("--queries", type=int, default=1000, help="single queries timed on the index")
    index.add_argument("--exact-queries", type=int, default=200, help="single queries timed on exact search")
    index.add_argument("--kind", choices=["auto", "flat", "ivf", "hnsw"], default="auto")
    index.add_argument(
        "--spread",
        type=float,
        default=1.0,
        help="cluster noise relative to the centres (default 1.0; ~2 is near-uniform)",
    )
    index.add_argument("--seed", type=int, default=0)
    index.add_argument("--json", type=Path, default=None, help="write the result here")
    fold = sub.add_parser("fold-in", help="latency of fold-in and cold-start user vectors from a bundle")
    fold.add_argument("--bundle", type=Path, required=True, help="a bundle version dir or bundles root")
    fold.add_argument("--calls", type=int, default=300)
    fold.add_argument("--json", type=Path, default=None, help="write the result here")
    for name, (module, help_text) in DELEGATED.items():
        delegated = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(delegated)


def run(args: argparse.Namespace) -> int:
    if args.bench == "fold-in":
        return _run_fold_in(args)
    if args.bench in DELEGATED:
        return int(importlib.import_module(DELEGATED[args.bench][0]).run(args) or 0)
    return _run_index(args)


def _run_index(args: argparse.Namespace) -> int:
    from embeddings.benchmark import bench_index
    from embeddings.retrieval import IndexOptions

    if args.items < 10 or args.dim < 2 or args.queries < 1 or args.exact_queries < 1 or args.spread <= 0:
        raise ConfigError(
            "--items must be >= 10, --dim >= 2, --queries and --exact-queries >= 1, --spread > 0"
        )
    result = bench_index(
        args.items,
        args.dim,
        seed=args.seed,
        n_queries=args.queries,
        n_exact_queries=args.exact_queries,
        options=IndexOptions(kind=args.kind, seed=args.seed),
        spread=args.spread,
        log=lambda m: print(m, flush=True),
    )
    print_json_report({**result, "environment": environment()}, args.json)
    return 0


def _run_fold_in(args: argparse.Namespace) -> int:
    from embeddings.benchmark import bench_fold_in
    from embeddings.bundle import Bundle

    if args.calls < 1:
        raise ConfigError("--calls must be >= 1")
    result = bench_fold_in(Bundle.load(args.bundle), n_calls=args.calls)
    print_json_report({**result, "environment": environment()}, args.json)
    return 0
