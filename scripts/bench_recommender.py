"""CPU per call of the recommender itself: no HTTP, no app, no database.

    .venv/bin/python scripts/bench_recommender.py --bundle artifacts/ml100k/bundles
    .venv/bin/python scripts/bench_recommender.py --bundle artifacts/ml100k/bundles --profile explained

`Recommender.recommend` is what every computed top-10 runs (retrieval, segment, evidence and
template explanations); `scripts/bench_app.py` adds the routes around it and `explainrec bench
serve` the HTTP server and the load generator. Timing this layer alone removes most of the
noise a shared 2-core VM puts on the other two, so changes to the vector math show up.
Scenarios (µs per call, median of `--rounds` rounds of `--calls` calls, each round over random
bundle users):

- `top10`: a known user's top-10, seen items excluded;
- `explained`: the same with template explanations, each user's attribution already cached
  (the repeat path);
- `explained_first`: a user's first explained top-10 (the counterfactual attribution through
  the user tower), every call a user not asked before: each round loads the bundle afresh and
  asks the same seeded sample of `--calls` users (at most all of them), so rounds and runs
  compare the same work;
- `cold_start`: a profile form with two interests and two liked items (one user-tower pass).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SCENARIOS = ("top10", "explained", "explained_first", "cold_start")


def timed(call: Callable[[], object], n: int) -> float:
    """Mean CPU µs of `n` calls."""
    begin = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - begin) / n * 1e6


def main(args: argparse.Namespace) -> None:
    from backend.recommender import Feedback, Recommender, RecQuery, Shopper
    from embeddings.bundle import resolve_bundle_dir
    from explain.template import TemplateExplainer
    from explainrec.errors import ExplainrecError

    try:
        recommender = Recommender.load(resolve_bundle_dir(args.bundle), TemplateExplainer())
    except ExplainrecError as exc:
        raise SystemExit(f"error: no bundle could be loaded from {args.bundle}: {exc}") from None
    users = [u for u in recommender.spec.user_ids if u]
    items = list(recommender.spec.item_ids)
    categories = list(recommender.spec.categories)
    rng = random.Random(0)
    plain, explained = RecQuery(k=10), RecQuery(k=10, explain=True)
    for user_id in users:  # every user's vector, segment and attribution once
        recommender.recommend(Shopper(user_id), explained)
    # The same users every round, each round on a Recommender that has seen none of them: rounds
    # then differ by the machine only, not by how long the drawn users' histories are.
    first_users = rng.sample(users, min(args.calls, len(users)))
    first: dict[str, Any] = {}

    def new_first_round() -> None:
        first["recommender"] = Recommender.load(resolve_bundle_dir(args.bundle), TemplateExplainer())
        first["users"] = iter(first_users)

    def cold_start() -> object:
        liked = rng.sample(items, 2)
        shopper = Shopper(
            None,
            {"age": rng.randint(18, 70)},
            rng.sample(categories, min(2, len(categories))),
            [Feedback(i, item, "like") for i, item in enumerate(liked)],
        )
        return recommender.recommend(shopper, plain)

    calls: dict[str, Callable[[], object]] = {
        "top10": lambda: recommender.recommend(Shopper(rng.choice(users)), plain),
        "explained": lambda: recommender.recommend(Shopper(rng.choice(users)), explained),
        "explained_first": lambda: first["recommender"].recommend(Shopper(next(first["users"])), explained),
        "cold_start": cold_start,
    }

    def one_round(name: str, profiler: cProfile.Profile | None = None) -> float:
        if name == "explained_first":
            new_first_round()
        if profiler is not None:
            profiler.enable()
        try:
            return timed(calls[name], len(first_users) if name == "explained_first" else args.calls)
        finally:
            if profiler is not None:
                profiler.disable()

    for name in SCENARIOS:
        rounds = [one_round(name) for _ in range(args.rounds)]
        print(f"{name:16s} {statistics.median(rounds):9.1f} µs/call", flush=True)
        if name == args.profile:
            profiler = cProfile.Profile()
            one_round(name, profiler)
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(30)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bundle", type=Path, required=True, help="bundles root (follows LATEST) or a version dir"
    )
    parser.add_argument("--calls", type=int, default=1000, help="calls per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scenario; the median is shown")
    parser.add_argument("--profile", choices=SCENARIOS, help="cProfile one more round of this scenario")
    parser.add_argument("--sort", choices=["cumulative", "tottime"], default="cumulative")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be at least 1")
    return args


if __name__ == "__main__":
    main(parse())
