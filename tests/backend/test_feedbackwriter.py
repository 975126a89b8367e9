"""Group commit: concurrent feedback writes share transactions, each request gets its own outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from backend.db.engine import make_engine, make_session_factory, upgrade_database
from backend.db.writelock import SqliteWriteLock
from backend.feedbackwriter import FeedbackWriter
from backend.store import FeedbackWrite, IdempotencyConflictError, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = make_engine(f"sqlite:///{tmp_path / 'writer.db'}")
    upgrade_database(engine)
    return Store(make_session_factory(engine))


def _commits(store: Store) -> list[int]:
    """Commits through the pool (worker threads) and on the event loop's own connection."""
    commits: list[int] = []
    event.listen(store._sessions.kw["bind"], "commit", lambda _conn: commits.append(1))
    assert store._loop_connection is not None
    store._loop_connection._connect().set_trace_callback(
        lambda sql: commits.append(1) if sql == "COMMIT" else None
    )
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


@pytest.mark.parametrize("written_on", ["loop", "thread"])
def test_a_failed_batch_fails_its_requests_and_the_next_batch_is_written(
    store: Store, written_on: str
) -> None:
    down = {"now": True}

    class FlakyStore:
        def add_feedback_batch(self, writes: list[FeedbackWrite]) -> object:
            if down["now"]:
                down["now"] = False
                raise OperationalError("INSERT", {}, Exception("disk I/O error"))
            return store.add_feedback_batch(writes)

        def add_feedback_batch_now(self, writes: list[FeedbackWrite]) -> object:
            return self.add_feedback_batch(writes) if written_on == "loop" else None

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


def test_a_free_write_lock_means_the_loop_writes_the_batch_itself(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_thread(*_: object) -> object:
        raise AssertionError("handed to a thread although nobody else was writing")

    monkeypatch.setattr("backend.feedbackwriter.run_in_threadpool", no_thread)
    writer = FeedbackWriter(lambda: store)

    async def burst() -> list[tuple[object, bool]]:
        writes = [FeedbackWrite("u1", f"i{i}", "view", None, None, None) for i in range(20)]
        results = await asyncio.gather(*(writer.add(w) for w in writes))
        await writer.close()
        return results

    assert all(created for _, created in asyncio.run(burst()))
    assert store.count_feedback() == 20


def test_a_writer_in_another_process_sends_the_batch_to_a_thread_and_the_loop_runs_on(
    store: Store, tmp_path: Path
) -> None:
    other_worker = SqliteWriteLock(str(tmp_path / "writer.db"))  # another worker's lock on the file
    writer = FeedbackWriter(lambda: store)

    async def while_locked() -> tuple[object, int]:
        with other_worker:
            write = asyncio.ensure_future(writer.add(FeedbackWrite("u1", "i1", "like", None, None, None)))
            ticks = 0
            for _ in range(20):  # the loop keeps serving while the write waits in its thread
                await asyncio.sleep(0.01)
                ticks += 1
            assert not write.done() and store.count_feedback() == 0
        result = await asyncio.wait_for(write, 5)
        await writer.close()
        return result, ticks

    (record, created), ticks = asyncio.run(while_locked())  # type: ignore[misc]
    assert ticks == 20 and created and store.feedback_for("u1")[0].id == record.id


def test_a_lone_write_commits_at_once(store: Store) -> None:
    writer = FeedbackWriter(lambda: store)

    async def one() -> object:
        record = await asyncio.wait_for(writer.add(FeedbackWrite("u1", "i1", "like", None, None, None)), 5)
        await writer.close()
        return record

    record, created = asyncio.run(one())  # type: ignore[misc]
    assert created and store.feedback_for("u1")[0].id == record.id
