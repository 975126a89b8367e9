"""Group commit: concurrent feedback writes share transactions, each request gets its own outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from backend.db.engine import make_engine, make_session_factory, upgrade_database
from backend.feedbackwriter import FeedbackWriter
from backend.store import FeedbackWrite, IdempotencyConflictError, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = make_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    upgrade_database(engine)
    return Store(make_session_factory(engine))


def _commits(store: Store) -> list[int]:
    commits: list[int] = []
    event.listen(store._sessions.kw["bind"], "commit", lambda _conn: commits.append(1))
    return commits


def test_concurrent_writes_share_commits_and_each_gets_its_own_row(store: Store) -> None:
    sizes: list[int] = []
    seconds: list[float] = []
    writer = FeedbackWriter(lambda: store, on_commit=lambda n, s: (sizes.append(n), seconds.append(s)))
    commits = _commits(store)

    async def burst() -> list[object]:
        writes = [FeedbackWrite(f"u{i % 7}", f"i{i}", "view", None, None, None) for i in range(60)]
        writes.append(FeedbackWrite("u1", "i1", "like", None, None, "once"))
        writes.append(FeedbackWrite("u1", "i2", "like", None, None, "once"))  # same key, other item
        results = await asyncio.gather(*(writer.add(w) for w in writes), return_exceptions=True)
        await writer.close()
        return results

    results = asyncio.run(burst())
    stored = [r for r in results if isinstance(r, tuple)]
    assert len(stored) == 61 and isinstance(results[-1], IdempotencyConflictError)
    assert len({record.id for record, _ in stored}) == 61
    assert [record.item_id for record, _ in stored[:60]] == [f"i{i}" for i in range(60)]
    assert store.count_feedback() == 61
    assert writer.writes == 62 and writer.batches == len(commits) < 10  # not one commit per write
    assert sum(sizes) == 62 and len(sizes) == len(commits)  # what /metrics reports
    assert len(seconds) == len(commits) and all(s > 0 for s in seconds)


def test_a_failed_batch_fails_its_requests_and_the_next_batch_is_written(store: Store) -> None:
    down = {"now": True}

    class FlakyStore:
        def add_feedback_batch(self, writes: list[FeedbackWrite]) -> object:
            if down["now"]:
                down["now"] = False
                raise OperationalError("INSERT", {}, Exception("disk I/O error"))
            return store.add_feedback_batch(writes)

    writer = FeedbackWriter(lambda: FlakyStore())  # type: ignore[arg-type, return-value]

    async def two_rounds() -> tuple[list[object], object]:
        first = await asyncio.gather(
            *(writer.add(FeedbackWrite("u1", f"i{i}", "view", None, None, None)) for i in range(5)),
            return_exceptions=True,
        )
        second = await writer.add(FeedbackWrite("u1", "i9", "like", None, None, None))
        await writer.close()
        return first, second

    first, second = asyncio.run(two_rounds())
    assert all(isinstance(r, OperationalError) for r in first)  # none stored, each told so
    assert isinstance(second, tuple) and second[1] is True
    assert [e.item_id for e in store.feedback_for("u1")] == ["i9"]


def test_a_lone_write_commits_at_once(store: Store) -> None:
    writer = FeedbackWriter(lambda: store)

    async def one() -> object:
        record = await asyncio.wait_for(writer.add(FeedbackWrite("u1", "i1", "like", None, None, None)), 5)
        await writer.close()
        return record

    record, created = asyncio.run(one())  # type: ignore[misc]
    assert created and store.feedback_for("u1")[0].id == record.id
