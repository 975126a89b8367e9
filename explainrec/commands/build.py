"""`explainrec build`: write a new serving bundle version from a trained model.

    explainrec build --checkpoint artifacts/bundles                  # re-index/re-segment LATEST
    explainrec build --checkpoint artifacts/bundles/<v> --index hnsw --k-max 12
    explainrec build --checkpoint artifacts/runs/<run>/checkpoints/best-3.ckpt --out artifacts/bundles

A bundle (a version dir or a bundles root with LATEST) is rebuilt from its own towers, vectors
and tables with new index/segment settings; the source is never changed. A Lightning checkpoint
is turned into bundle contents by `training.export.contents_from_checkpoint`.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from explainrec.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a bundle version dir, a bundles root (follows LATEST) or a Lightning .ckpt",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="bundles root to write into (default: the source bundle's root)",
    )
    parser.add_argument("--version", default=None, help="version name (default: UTC timestamp + random)")
    parser.add_argument("--index", choices=["auto", "flat", "ivf", "hnsw"], default="auto")
    parser.add_argument(
        "--flat-threshold",
        type=int,
        default=50_000,
        help="auto: exact IndexFlatIP up to this many items, IVF above",
    )
    parser.add_argument("--target-recall", type=float, default=0.98, help="recall@10 the index is tuned to")
    parser.add_argument(
        "--segments",
        choices=["auto", "kmeans", "ward"],
        default="auto",
        help="auto: whichever of K-Means and Ward has the better silhouette",
    )
    parser.add_argument("--k-min", type=int, default=2)
    parser.add_argument("--k-max", type=int, default=10)
    parser.add_argument(
        "--rfm",
        type=Path,
        default=None,
        help="Parquet RFM table (user_id, recency_days, frequency, monetary) for segment profiles",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from embeddings.bundle import LATEST, MANIFEST, Bundle, write_bundle
    from embeddings.retrieval import IndexOptions
    from embeddings.segments import SegmentOptions

    if not 2 <= args.k_min <= args.k_max:
        raise ConfigError(f"--k-min/--k-max must satisfy 2 <= k-min <= k-max, got {args.k_min}/{args.k_max}")
    if not 0 < args.target_recall <= 1:
        raise ConfigError(f"--target-recall must be in (0, 1], got {args.target_recall}")
    source: Path = args.checkpoint
    if not source.exists():
        raise ConfigError(f"--checkpoint {source} does not exist")
    if (source / MANIFEST).is_file() or (source / LATEST).is_file():
        bundle = Bundle.load(source)
        print(f"rebuilding from bundle {bundle.path}")
        contents = bundle.to_contents()
        out = args.out or bundle.path.parent
    else:
        contents = _from_checkpoint(source)
        if args.out is None:
            raise ConfigError("--out is required when building from a checkpoint")
        out = args.out
    if args.rfm is not None:
        try:
            contents.rfm = pd.read_parquet(args.rfm).set_index("user_id")
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"--rfm {args.rfm}: not a Parquet table with a user_id column ({exc})") from exc
    path = write_bundle(
        contents,
        out,
        args.version,
        index_options=IndexOptions(
            kind=args.index,
            flat_threshold=args.flat_threshold,
            target_recall=args.target_recall,
            seed=args.seed,
        ),
        segment_options=SegmentOptions(
            method=args.segments, k_range=(args.k_min, args.k_max), seed=args.seed
        ),
        log=lambda m: print(m, flush=True),
    )
    manifest = Bundle.load(path).manifest
    print(
        f"index: {manifest['index']['description']}; segments: {manifest['segments']['k']} "
        f"({manifest['segments']['method']}) {manifest['segments']['names']}"
    )
    return 0


def _from_checkpoint(path: Path) -> Any:
    try:
        export = importlib.import_module("training.export")
    except ModuleNotFoundError as exc:
        if exc.name in ("training", "training.export"):
            raise ConfigError(
                f"{path} is not a bundle, and building from a checkpoint needs training.export, "
                "which this checkout lacks"
            ) from exc
        raise
    return export.contents_from_checkpoint(path)
