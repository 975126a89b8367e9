"""What `prepare` did to the raw data: every dropped or fixed row, counted with its reason.

Loaders call `report.drop(...)` / `report.fix(...)`; in strict mode a drop raises DataError
instead (see docs/data.md for which problems are drops, fixes or errors).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from explainrec.errors import DataError
from training.data.schema import Dataset

MAX_EXAMPLES = 5


@dataclass
class RowIssue:
    table: str
    file: str
    action: Literal["dropped", "fixed"]
    reason: str
    count: int
    examples: list[str] = field(default_factory=list)

    def line(self) -> str:
        shown = f" (e.g. {'; '.join(self.examples)})" if self.examples else ""
        return f"{self.action} {self.count} {self.table} row(s) in {self.file}: {self.reason}{shown}"


@dataclass
class PrepareReport:
    dataset: str
    source: str
    strict: bool = False
    issues: list[RowIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def _add(
        self,
        action: Literal["dropped", "fixed"],
        table: str,
        file: str,
        reason: str,
        count: int,
        examples: list[str] | None,
    ) -> None:
        if count <= 0:
            return
        issue = RowIssue(table, file, action, reason, int(count), list(examples or [])[:MAX_EXAMPLES])
        if self.strict and action == "dropped":
            raise DataError(f"{issue.line()}; strict mode turns every drop into an error")
        self.issues.append(issue)

    def drop(self, table: str, file: str, reason: str, count: int, examples: list[str] | None = None) -> None:
        """Record `count` rows removed, e.g. an interaction with an unknown item."""
        self._add("dropped", table, file, reason, count, examples)

    def fix(self, table: str, file: str, reason: str, count: int, examples: list[str] | None = None) -> None:
        """Record `count` rows kept after a repair, e.g. an unparsable age set to missing."""
        self._add("fixed", table, file, reason, count, examples)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def dropped_total(self, table: str | None = None) -> int:
        return sum(i.count for i in self.issues if i.action == "dropped" and table in (None, i.table))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format_text(self) -> str:
        s = self.stats
        lines = [f"dataset {self.dataset} (from {self.source})"]
        if s:
            lines += [
                f"  users        {s['users']:>10,}",
                f"  items        {s['items']:>10,}",
                f"  interactions {s['interactions']:>10,}",
                f"  density      {s['density']:.6f}  (distinct user-item pairs / users x items)",
                f"  date range   {s['first_timestamp']} .. {s['last_timestamp']}",
                "  events       " + ", ".join(f"{k} {v:,}" for k, v in s["events"].items()),
            ]
            if s.get("users_without_interactions"):
                lines.append(f"  users without interactions {s['users_without_interactions']:,}")
            if s.get("items_without_interactions"):
                lines.append(f"  items without interactions {s['items_without_interactions']:,}")
        if self.issues:
            lines.append("dropped or fixed rows:")
            lines += [f"  {issue.line()}" for issue in self.issues]
        else:
            lines.append("dropped or fixed rows: none")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def dataset_stats(ds: Dataset) -> dict[str, Any]:
    """Counts, density and date range shown by `prepare` and stored in prepare_report.json."""
    inter = ds.interactions
    n_users, n_items = len(ds.users), len(ds.items)
    pairs = len(inter[["user_id", "item_id"]].drop_duplicates()) if len(inter) else 0
    events = inter["event"].value_counts().sort_index()
    ts: pd.Series = inter["timestamp"]
    return {
        "users": n_users,
        "items": n_items,
        "interactions": len(inter),
        "distinct_pairs": pairs,
        "density": pairs / (n_users * n_items) if n_users and n_items else 0.0,
        "first_timestamp": str(ts.min()) if len(ts) else None,
        "last_timestamp": str(ts.max()) if len(ts) else None,
        "events": {str(k): int(v) for k, v in events.items()},
        # unique() first: isin over millions of Arrow strings loops in Python otherwise.
        "users_without_interactions": int((~ds.users["user_id"].isin(inter["user_id"].unique())).sum()),
        "items_without_interactions": int((~ds.items["item_id"].isin(inter["item_id"].unique())).sum()),
    }
