"""Time both ways the numpy user tower sums history rows, on the batch shapes serving makes.

    .venv/bin/python scripts/bench_history_sums.py
    .venv/bin/python scripts/bench_history_sums.py --rows 1682 --dims 18,64,64

`embeddings/numpy_tower.py` either gathers each history's rows and adds them per history
(`np.add.reduceat`) or builds a [batch, rows] count matrix and multiplies it with the table
(BLAS). Which is cheaper depends on how many entries the batch holds against batch x rows; the
tower switches at `GATHER_COST_IN_CELLS` entries-to-cells. For each shape (a request's one or two
users; the evidence's windows: one history per removed set) this prints µs per batch for each
way, over the tables a forward pass sums (category counts, history embeddings, item vectors),
and where the measured break-even lies. Random histories; `OMP_NUM_THREADS=1`.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from embeddings import numpy_tower

# (histories, entries each): a fold-in, a fold-in with its session, evidence windows of users
# with short to long histories (ML-100K's heaviest users have a few hundred positives).
SHAPES = (
    (1, 12),
    (2, 12),
    (1, 500),
    (13, 12),
    (33, 32),
    (36, 13),
    (61, 60),
    (70, 30),
    (109, 108),
    (132, 131),
    (221, 220),
)


def time_both(batch: int, length: int, rows: int, dims: list[int], seed: int = 0) -> tuple[float, float]:
    """µs per batch: (gathered rows, count matrix)."""
    rng = np.random.default_rng(seed)
    tables = [rng.standard_normal((rows, d)).astype(np.float32) for d in dims]
    history = rng.integers(0, rows, (batch, length))
    mask = np.ones((batch, length), dtype=bool)
    timings = []
    for cost in (0, 10**9):  # never the count matrix, then always it
        numpy_tower.GATHER_COST_IN_CELLS = cost

        def one_pass() -> None:
            sums = numpy_tower._HistorySums(history, mask, rows)
            for table in tables:
                sums.sum(table)

        calls = max(3, 20_000 // (batch * length + 10))
        timings.append(timeit.timeit(one_pass, number=calls) / calls * 1e6)
    return timings[0], timings[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1682, help="catalogue size (default: ML-100K's)")
    parser.add_argument(
        "--dims",
        default="18,64",
        help="the summed tables' widths (default: ML-100K's category counts "
        "and history embedding; a tied history adds the item vectors)",
    )
    args = parser.parse_args(argv)
    dims = [int(d) for d in args.dims.split(",")]
    chosen = numpy_tower.GATHER_COST_IN_CELLS
    print(f"{'histories':>9} {'entries':>7} {'gathered µs':>12} {'matrix µs':>10}  cells per entry  faster")
    for batch, length in SHAPES:
        gathered, matrix = time_both(batch, length, args.rows, dims)
        cells = batch * args.rows / (batch * length)
        faster = "gathered" if gathered < matrix else "matrix"
        print(f"{batch:9d} {length:7d} {gathered:12.0f} {matrix:10.0f}  {cells:15.1f}  {faster}")
    print(f"the tower uses the matrix when cells per entry < {chosen}")


if __name__ == "__main__":
    main()
