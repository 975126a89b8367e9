"""The `explainrec evaluate` JSON document and its plain-text table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training.evaluation.harness import ModelResult

TABLE_METRICS = (
    "ndcg@10",
    "recall@10",
    "precision@10",
    "f1@10",
    "map@10",
    "ndcg@20",
    "recall@20",
    "coverage@10",
)


def report_json(
    dataset: str, protocol: str, split_counts: dict[str, int], results: Sequence[ModelResult]
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "protocol": protocol,
        "split": {key: int(split_counts[key]) for key in ("train", "valid", "test", "users", "items")},
        "results": [result.to_json() for result in results],
    }


def format_table(results: Sequence[ModelResult], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """A fixed-width table, one row per model, best NDCG@10 marked with '*'."""
    best = max((r.metrics.get("ndcg@10", float("-inf")) for r in results), default=None)
    header = f"{'model':<20}" + "".join(f"{m:>13}" for m in metrics) + f"{'fit s':>9}{'trials':>7}"
    lines = [header, "-" * len(header)]
    for r in results:
        mark = "*" if r.metrics.get("ndcg@10") == best else " "
        cells = "".join(f"{r.metrics.get(m, float('nan')):>13.4f}" for m in metrics)
        lines.append(f"{r.model + mark:<20}{cells}{r.fit_seconds:>9.1f}{r.trials:>7}")
    return "\n".join(lines)
