"""The event loop's own SQLite connection, for the feedback batches it writes itself.

    loop = LoopConnection.for_engine(engine)      # None for PostgreSQL or an in-memory database
    outcome = loop.run_in_transaction(lambda sql: ...)  # None: another writer holds the lock
    loop.close()

The event loop writes a feedback batch itself when nobody else is writing (backend/feedbackwriter.py).
Through SQLAlchemy that store call cost twice its SQL: a py-spy profile of `bench serve`'s
feedback scenario (docs/benchmarks.md, round eleven) put the call at 16.6 % of the server's CPU,
of which the statements and the commit were 7.1 % and the two `PRAGMA busy_timeout` switches
around each batch 1.6 %; the rest was the pool's checkout, the transaction and the result layers.
This connection is one raw `sqlite3` connection, outside the pool, that never waits for SQLite's
lock (busy_timeout 0, set once) and runs prepared statements. The callers that may wait (a
worker thread, PostgreSQL) keep the pooled SQLAlchemy path; both share `Store`'s batch logic
through the two statements of `BatchSql`.

`BEGIN IMMEDIATE` takes SQLite's write lock before the key lookup, so the lookup and the insert
see one state: no other writer can store a key in between. It is only ever used by one caller at
a time: `Store` calls it while holding its `SqliteWriteLock`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import DateTime, Engine
from sqlalchemy.exc import DBAPIError

from backend.db.engine import sqlite_file

R = TypeVar("R")
# A stored event as the key lookup returns it: id, user_id, item_id, event, value, timestamp, key.
StoredRow = tuple[int, str, str, str, float | None, datetime, str]
EVENT_COLUMNS = ("user_id", "item_id", "event", "value", "timestamp", "created_at", "idempotency_key")


class BatchSql(Protocol):
    """The two statements of a feedback batch, on whichever connection runs it."""

    def rows_with_keys(self, keys: Sequence[str]) -> Sequence[StoredRow]: ...

    def insert(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """New events' ids, in the order of `rows`."""
        ...


_LOOKUP = (
    "SELECT id, user_id, item_id, event, value, timestamp, idempotency_key FROM feedback_events "
    "WHERE idempotency_key IN ({})"
)
_INSERT = (
    f"INSERT INTO feedback_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)


def _busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class LoopConnection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pooled: Any = None
        self._connection: sqlite3.Connection | None = None
        # SQLAlchemy's own conversions for the column type, so rows read back through the ORM
        # are the same as the ones it writes.
        timestamp_type = DateTime(timezone=True).dialect_impl(engine.dialect)
        self._to_db = cast(Callable[[Any], Any], timestamp_type.bind_processor(engine.dialect))
        self._from_db = cast(Callable[[Any], Any], timestamp_type.result_processor(engine.dialect, None))

    @classmethod
    def for_engine(cls, engine: Engine) -> LoopConnection | None:
        return cls(engine) if sqlite_file(engine.url) else None

    def run_in_transaction(self, work: Callable[[BatchSql], R]) -> R | None:
        """`work`'s result, committed; None, with nothing written, when another connection holds
        SQLite's write lock now. A database error rolls back, closes this connection (the next
        call opens another) and is raised as SQLAlchemy's (503 via the app's handlers)."""
        statement = "BEGIN IMMEDIATE"
        try:
            connection = self._connect()
            connection.execute(statement)
            try:
                result = work(self)
                statement = "COMMIT"
                connection.execute(statement)
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return result
        except sqlite3.Error as exc:
            if _busy(exc) and self._connection is not None and not self._connection.in_transaction:
                return None  # refused for another writer's lock, and rolled back: nothing written
            self.close()
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc

    def rows_with_keys(self, keys: Sequence[str]) -> list[StoredRow]:
        rows = self._live().execute(_LOOKUP.format(", ".join("?" * len(keys))), tuple(keys)).fetchall()
        return [(*row[:5], self._from_db(row[5]), row[6]) for row in rows]

    def insert(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        # One prepared statement a row: `lastrowid` is that row's id, whatever order a multi-row
        # INSERT ... RETURNING would hand them back in.
        cursor = self._live().cursor()
        ids: list[int] = []
        texts: dict[datetime, Any] = {}  # a batch's rows share their created_at: convert it once

        def as_text(value: datetime) -> Any:
            if value not in texts:
                texts[value] = self._to_db(value)
            return texts[value]

        for row in rows:
            cursor.execute(
                _INSERT,
                (
                    row["user_id"],
                    row["item_id"],
                    row["event"],
                    row["value"],
                    as_text(row["timestamp"]),
                    as_text(row["created_at"]),
                    row["idempotency_key"],
                ),
            )
            ids.append(cast(int, cursor.lastrowid))
        cursor.close()
        return ids

    def close(self) -> None:
        pooled, self._pooled, self._connection = self._pooled, None, None
        if pooled is not None:
            with contextlib.suppress(sqlite3.Error):  # already broken: nothing left to release
                pooled.close()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # Through the engine, so its connect listeners set the same pragmas (WAL, synchronous,
            # the checkpoint threshold); detached, so it holds no place in the pool.
            pooled = self._engine.raw_connection()
            connection = cast(sqlite3.Connection, pooled.driver_connection)
            pooled.detach()
            try:
                connection.isolation_level = None  # BEGIN and COMMIT are ours to send
                connection.execute("PRAGMA busy_timeout=0")  # never the loop in the busy handler
            except sqlite3.Error:
                pooled.close()
                raise
            self._pooled, self._connection = pooled, connection
        return self._connection

    def _live(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("LoopConnection statements run inside run_in_transaction()")
        return self._connection
