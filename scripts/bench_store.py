"""CPU per feedback write in the store alone: `Store.add_feedback_batch` on a throwaway SQLite file.

    .venv/bin/python scripts/bench_store.py
    .venv/bin/python scripts/bench_store.py --batches 1,12,32 --commits 200 --rounds 7

The group commit (backend/feedbackwriter.py) stores the writes waiting together in one
transaction, so the store's cost a write depends on the batch size: `bench serve`'s feedback
scenario commits ~13 writes at a time, its mixed scenario ~4. Each round stores `--commits`
batches of random clicks with fresh idempotency keys (the key lookup and the insert both run, as
in the service) and reports the process CPU a write; one line per batch size, the median of
`--rounds` rounds. The database grows as the rounds go, as it would in service.

    .venv/bin/python scripts/bench_store.py --latency 3000 --batches 10

`--latency N` times N batches of each size one after another through the event loop's call
(`Store.add_feedback_batch_now`) and prints the wall time's p50 / p99 / p99.9 / max and the calls
over 3 ms, once with SQLite's own WAL checkpoints (inside the commit that passes 1 000 pages)
and once as the app runs (`make_engine(..., background_checkpoints=True)` and a
`WalCheckpointer` thread): what a commit on the loop holds every request of the worker for.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.store import FeedbackWrite

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

    if args.latency:
        for size in args.batches:
            for background in (False, True):
                print(latency_line(size, args.latency, background, batch), flush=True)
        return
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


def latency_line(size: int, calls: int, background: bool, batch: Callable[[int], list[FeedbackWrite]]) -> str:
    """One line: the wall time of `calls` batches of `size` on a fresh file, one checkpoint mode."""
    from backend.db.checkpoint import WalCheckpointer
    from backend.db.engine import make_engine, make_session_factory, upgrade_database
    from backend.store import Store

    with tempfile.TemporaryDirectory(prefix="explainrec-bench-store-", ignore_cleanup_errors=True) as tmp:
        engine = make_engine(f"sqlite:///{tmp}/feedback.db", background_checkpoints=background)
        upgrade_database(engine)
        store = Store(make_session_factory(engine))
        checkpointer = WalCheckpointer(f"{tmp}/feedback.db")
        if background:
            checkpointer.start()
        seconds = []
        for _ in range(calls):
            writes = batch(size)
            begin = time.perf_counter()
            if store.add_feedback_batch_now(writes) is None:
                raise SystemExit("the write lock was taken: is another process writing to the file?")
            seconds.append(time.perf_counter() - begin)
        checkpointer.stop()
        store.close()
        engine.dispose()
    seconds.sort()
    ms = [1000 * seconds[min(len(seconds) - 1, int(q * len(seconds)))] for q in (0.5, 0.99, 0.999)]
    mode = "checkpoint thread" if background else "SQLite's checkpoints"
    return (
        f"batch {size:4d} {mode:>21}: p50 {ms[0]:.2f} p99 {ms[1]:.2f} p99.9 {ms[2]:.2f} "
        f"max {1000 * seconds[-1]:.2f} ms, {sum(t > 0.003 for t in seconds)} of {calls} over 3 ms"
    )


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
    parser.add_argument(
        "--latency",
        type=int,
        default=0,
        metavar="N",
        help="time N batches of each size, both checkpoint modes, instead of CPU a write",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
