"""The event loop's SQLite connection: the pooled path's rows, never a wait, never half a batch."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.db.engine import (
    SAFETY_AUTOCHECKPOINT_PAGES,
    SQLITE_BUSY_TIMEOUT_MS,
    make_engine,
    make_session_factory,
    upgrade_database,
)
from backend.db.loopconnection import LoopConnection
from backend.store import FeedbackRecord, FeedbackWrite, IdempotencyConflictError, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = make_engine(f"sqlite:///{tmp_path / 'loop.db'}", background_checkpoints=True)
    upgrade_database(engine)
    return Store(make_session_factory(engine))


def _loop(store: Store) -> LoopConnection:
    assert store._loop_connection is not None
    return store._loop_connection


def _created(outcomes: object) -> list[FeedbackRecord]:
    assert isinstance(outcomes, list)
    records = []
    for outcome in outcomes:
        assert isinstance(outcome, tuple) and outcome[1] is True
        records.append(outcome[0])
    return records


def test_rows_written_on_the_loop_read_back_as_the_pooled_path_writes_them(store: Store) -> None:
    at = datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    writes = [
        FeedbackWrite("u1", "i1", "rating", 4.5, at, "k1"),
        FeedbackWrite("u1", "i2", "view", None, None, None),
    ]
    on_loop = _created(store.add_feedback_batch_now(writes))
    pooled = _created(store.add_feedback_batch([replace(w, user_id="u2") for w in writes]))
    assert [r.id for r in on_loop] == [1, 2] and [r.id for r in pooled] == [3, 4]
    assert on_loop[0].timestamp == at.astimezone(UTC) == pooled[0].timestamp  # the same instant, in UTC
    read_back = store.feedback_for("u1")
    assert read_back == on_loop  # what the ORM reads is what the loop answered
    with store._engine.connect() as connection:
        stored = connection.execute(
            text("SELECT timestamp, idempotency_key FROM feedback_events ORDER BY id")
        ).all()
    assert stored[0][0] == stored[2][0] == "2026-11-28 08:00:00.123456"  # one text format for both paths
    assert stored[0][1] == "u1\x1fk1" and stored[2][1] == "u2\x1fk1"  # keys scoped to the user


def test_keys_stored_by_either_path_replay_or_conflict_on_the_loop(store: Store) -> None:
    first = _created(store.add_feedback_batch([FeedbackWrite("u1", "i1", "like", None, None, "k")]))[0]
    outcomes = store.add_feedback_batch_now(
        [
            FeedbackWrite("u1", "i1", "like", None, None, "k"),  # the same event again
            FeedbackWrite("u1", "i2", "like", None, None, "k"),  # the key reused for another item
            FeedbackWrite("u1", "i3", "like", None, None, "new"),
            FeedbackWrite("u1", "i3", "like", None, None, "new"),  # twice in one batch: stored once
        ]
    )
    assert outcomes is not None
    assert outcomes[0] == (first, False)
    assert isinstance(outcomes[1], IdempotencyConflictError)
    assert isinstance(outcomes[2], tuple) and outcomes[2][1] is True
    assert outcomes[3] == (outcomes[2][0], False)
    assert store.count_feedback() == 2


def test_a_writer_that_skips_the_lock_gets_none_at_once_and_nothing_is_stored(
    store: Store, tmp_path: Path
) -> None:
    foreign = sqlite3.connect(tmp_path / "loop.db", isolation_level=None)  # e.g. a hand-run sqlite3
    foreign.execute("BEGIN IMMEDIATE")
    started = time.perf_counter()
    assert store.add_feedback_batch_now([FeedbackWrite("u1", "i1", "like", None, None, None)]) is None
    assert time.perf_counter() - started < 1.0  # not the 15 s busy timeout
    foreign.execute("ROLLBACK")
    assert store.count_feedback() == 0
    # Only the loop's connection refuses to wait; the pool's still wait their turn.
    assert _loop(store)._connect().execute("PRAGMA busy_timeout").fetchone()[0] == 0
    with store._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    outcomes = store.add_feedback_batch_now([FeedbackWrite("u1", "i2", "like", None, None, None)])
    assert outcomes is not None and [e.item_id for e in store.feedback_for("u1")] == ["i2"]
    foreign.close()


def test_it_keeps_the_engines_pragmas_and_no_place_in_the_pool(store: Store) -> None:
    store.add_feedback_batch_now([FeedbackWrite("u1", "i1", "like", None, None, None)])
    raw = _loop(store)._connect()
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == SAFETY_AUTOCHECKPOINT_PAGES
    assert store._engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        raw.execute("SELECT 1")  # closed with the store
    store.close()  # twice is fine
    assert store.add_feedback_batch_now([FeedbackWrite("u1", "i2", "like", None, None, None)]) is not None
    assert store.count_feedback() == 2  # a later batch opens another


def test_a_batch_that_fails_halfway_stores_none_of_it(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = _loop(store)
    real_insert = loop.insert

    def first_row_then_fail(rows: Any) -> list[int]:
        real_insert(rows[:1])
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(loop, "insert", first_row_then_fail)
    writes = [FeedbackWrite("u1", f"i{i}", "view", None, None, None) for i in range(3)]
    with pytest.raises(DBAPIError):  # SQLAlchemy's: the handlers answer 503, not 500
        store.add_feedback_batch_now(writes)
    monkeypatch.undo()
    assert store.count_feedback() == 0
    assert len(_created(store.add_feedback_batch_now(writes))) == 3


def test_a_connection_that_breaks_mid_batch_is_a_database_error_and_the_next_batch_reopens(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = _loop(store)
    broken: list[sqlite3.Connection] = []

    def break_the_connection(rows: Any) -> list[int]:
        raw = loop._connect()
        broken.append(raw)
        raw.close()  # so neither the insert nor the rollback can run
        return LoopConnection.insert(loop, rows)

    monkeypatch.setattr(loop, "insert", break_the_connection)
    with pytest.raises(DBAPIError):
        store.add_feedback_batch_now([FeedbackWrite("u1", "i1", "like", None, None, None)])
    monkeypatch.undo()
    assert store.add_feedback_batch_now([FeedbackWrite("u1", "i2", "like", None, None, None)]) is not None
    assert loop._connect() is not broken[0]
    assert [e.item_id for e in store.feedback_for("u1")] == ["i2"]


def test_no_loop_connection_without_a_sqlite_file() -> None:
    engine = make_engine("sqlite://")
    upgrade_database(engine)
    store = Store(make_session_factory(engine))
    assert store._loop_connection is None  # its own connection would open another, empty database
    assert store.add_feedback_batch_now([FeedbackWrite("u1", "i1", "like", None, None, None)]) is None
    assert LoopConnection.for_engine(make_engine("postgresql://explainrec@127.0.0.1:1/x")) is None
