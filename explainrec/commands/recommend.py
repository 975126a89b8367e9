"""`explainrec recommend`: one user's top-k straight from a bundle, no server, no database.

explainrec recommend --user-id u42 --k 10 --explain
explainrec recommend --user-id u42 --format json --bundle artifacts/bundles
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user-id", required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--explain", action="store_true", help="add template explanations")
    parser.add_argument(
        "--bundle",
        type=Path,
        default=Path("artifacts/bundles"),
        help="bundles root (follows LATEST) or a version dir",
    )
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--include-seen", action="store_true", help="do not leave out the user's history")


def run(args: argparse.Namespace) -> int:
    from backend.recommender import Recommender, RecQuery, Shopper
    from explain.template import TemplateExplainer
    from explainrec.errors import ConfigError

    if not 1 <= args.k <= 1000:
        raise ConfigError(f"--k must be 1..1000, got {args.k}")
    recommender = Recommender.load(args.bundle, TemplateExplainer())
    result = recommender.recommend(
        Shopper(args.user_id), RecQuery(k=args.k, explain=args.explain, exclude_seen=not args.include_seen)
    )
    if args.format == "json":
        print(
            json.dumps(
                {
                    "user_id": result.user_id,
                    "model_version": result.model_version,
                    "strategy": result.strategy,
                    "segment": None
                    if result.segment_id is None
                    else {"id": result.segment_id, "name": result.segment_name},
                    "items": [
                        {
                            "item_id": s.item.item_id,
                            "title": s.item.title,
                            "categories": s.item.categories,
                            "price": s.item.price,
                            "score": round(s.score, 6),
                            "explanation": s.explanation.to_dict() if s.explanation else None,
                        }
                        for s in result.items
                    ],
                },
                ensure_ascii=False,
                indent=1,
            )
        )
        return 0
    segment = (
        f"segment {result.segment_id} ({result.segment_name})"
        if result.segment_id is not None
        else "no segment"
    )
    print(f"user {result.user_id}: {result.strategy}, {segment}, model {result.model_version}")
    for rank, s in enumerate(result.items, 1):
        price = f"{s.item.price:8.2f}" if s.item.price is not None else "       -"
        print(
            f"{rank:3d}. {s.score:7.4f} {price}  {s.item.item_id:<10} {s.item.title[:50]:<50} "
            f"{', '.join(s.item.categories)}"
        )
        if s.explanation is not None:
            print(f"      {s.explanation.text}")
    return 0
