"""CPU per feedback write in the store alone: `Store.add_feedback_batch` on a throwaway SQLite file.

    .venv/bin/python scripts/bench_store.py
    .venv/bin/python scripts/bench_store.py --batches 1,12,32 --commits 200 --rounds 7

The group commit (backend/feedbackwriter.py) stores the writes waiting together in one
transaction, so the store's cost a write depends on the batch size: `bench serve`'s feedback
scenario commits ~13 writes at a time, its mixed scenario ~4. Each round stores `--commits`
batches of random clicks with fresh idempotency keys (the key lookup and the insert both run, as
in the service) and reports the process CPU a write; one line per batch size, the median of
`--rounds` rounds. The database grows as the rounds go, as it would in service.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> None:
    from backend.db.engine import make_engine, make_session_factory, upgrade_database
    from backend.store import FeedbackWrite, Store

    args = parse(argv)
    rng = random.Random(0)

    def batch(size: int) -> list[FeedbackWrite]:
        return [
            FeedbackWrite(
                f"u{rng.randrange(1000)}",
                f"i{rng.randrange(2000)}",
                "click",
                None,
                None,
                f"{rng.getrandbits(64):016x}",
            )
            for _ in range(size)
        ]

    with tempfile.TemporaryDirectory(prefix="explainrec-bench-store-", ignore_cleanup_errors=True) as tmp:
        engine = make_engine(f"sqlite:///{tmp}/feedback.db")
        upgrade_database(engine)
        store = Store(make_session_factory(engine))
        for size in args.batches:
            rounds = []
            for _ in range(args.rounds):
                batches = [batch(size) for _ in range(args.commits)]
                begin = time.process_time()
                for writes in batches:
                    store.add_feedback_batch(writes)
                rounds.append((time.process_time() - begin) / (args.commits * size) * 1e6)
            print(f"batch {size:4d} {statistics.median(rounds):8.1f} µs CPU a write", flush=True)
        engine.dispose()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--batches",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 4, 12, 32],
        help="batch sizes, comma-separated (default 1,4,12,32)",
    )
    parser.add_argument("--commits", type=int, default=200, help="batches per round (default 200)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per batch size (default 7)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
