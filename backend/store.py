"""The service's reads and writes to its database, returning plain records (no ORM objects leak out).

Every method opens and commits its own short transaction, so a 201 from a route means the row
is durable. Database outages surface as `sqlalchemy.exc.OperationalError`/`DBAPIError`, which
the app turns into 503 + Retry-After.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Row, bindparam, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from backend import security
from backend.db import models
from backend.db.engine import sqlite_file
from backend.db.loopconnection import BatchSql, LoopConnection, StoredRow
from backend.db.writelock import SqliteWriteLock

SCOPES = ("read", "feedback", "admin")


class UserExistsError(Exception):
    pass


class IdempotencyConflictError(Exception):
    """The idempotency key was already used for a different event."""


@dataclass(frozen=True)
class FeedbackWrite:
    """One feedback event to store (timestamp None: now)."""

    user_id: str
    item_id: str
    event: str
    value: float | None
    timestamp: datetime | None
    idempotency_key: str | None


def _scoped_key(write: FeedbackWrite) -> str | None:
    """Idempotency keys are scoped to the user: the stored key carries the user id."""
    return f"{write.user_id}\x1f{write.idempotency_key}" if write.idempotency_key is not None else None


def _replay(
    write: FeedbackWrite, first: FeedbackRecord
) -> tuple[FeedbackRecord, bool] | IdempotencyConflictError:
    """A write whose key is already stored: the first event again, or a conflict if it differs."""
    if (first.item_id, first.event, first.value) != (write.item_id, write.event, write.value):
        return IdempotencyConflictError(write.idempotency_key)
    return first, False


def _dialect_insert(dialect: str, table: type[models.FeedbackEvent]) -> Any:
    """INSERT with ON CONFLICT support (the two databases the service runs on)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _stamped(writes: Sequence[FeedbackWrite]) -> list[tuple[FeedbackWrite, datetime]]:
    """Each write with the instant it is stored for: its own in UTC, else now."""
    return [(w, as_utc(w.timestamp) if w.timestamp is not None else now()) for w in writes]


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC (naive: taken as UTC). SQLite's DATETIME keeps a datetime's
    fields and drops its offset (a client's 10:00+02:00 was read back as 10:00 UTC), so writes
    convert first; SQLite hands back naive datetimes, PostgreSQL its session's zone."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UserRecord:
    pk: int
    user_id: str
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    location: str | None = None
    interests: tuple[str, ...] = ()
    created_at: datetime | None = None

    def profile(self) -> dict[str, object]:
        """Profile fields as the bundle's feature encoders expect them (missing ones omitted)."""
        fields = {
            "age": self.age,
            "gender": self.gender,
            "occupation": self.occupation,
            "location": self.location,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class SessionRecord:
    user: UserRecord
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class ApiKeyRecord:
    id: int
    name: str
    prefix: str
    scopes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class FeedbackRecord:
    id: int
    user_id: str
    item_id: str
    event: str
    value: float | None
    timestamp: datetime


def _user(row: models.User | Row[Any]) -> UserRecord:
    """From an ORM user or a column row with the same names (the read path's lighter query)."""
    return UserRecord(
        pk=row.id,
        user_id=row.user_id,
        age=row.age,
        gender=row.gender,
        occupation=row.occupation,
        location=row.location,
        interests=tuple(row.interests or ()),
        created_at=as_utc(row.created_at),
    )


def _feedback(row: models.FeedbackEvent) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id,
        user_id=row.user_id,
        item_id=row.item_id,
        event=row.event,
        value=row.value,
        timestamp=as_utc(row.timestamp),
    )


# The read path's two statements (Store.user_and_feedback), built once.
_USER_ROW = select(
    models.User.id,
    models.User.user_id,
    models.User.age,
    models.User.gender,
    models.User.occupation,
    models.User.location,
    models.User.interests,
    models.User.created_at,
).where(models.User.user_id == bindparam("user_id"))
_RECENT_EVENTS = (
    select(
        models.FeedbackEvent.id,
        models.FeedbackEvent.item_id,
        models.FeedbackEvent.event,
        models.FeedbackEvent.value,
        models.FeedbackEvent.timestamp,
    )
    .where(models.FeedbackEvent.user_id == bindparam("user_id"))
    .order_by(models.FeedbackEvent.id.desc())
    .limit(bindparam("limit"))
)
# The feedback writes' two statements (Store._insert_batch).
_EVENTS_BY_KEY = select(
    models.FeedbackEvent.id,
    models.FeedbackEvent.user_id,
    models.FeedbackEvent.item_id,
    models.FeedbackEvent.event,
    models.FeedbackEvent.value,
    models.FeedbackEvent.timestamp,
    models.FeedbackEvent.idempotency_key,
).where(models.FeedbackEvent.idempotency_key.in_(bindparam("keys", expanding=True)))
# ids in the order of the rows (SQLAlchemy's insertmanyvalues keeps the correlation).
_INSERT_EVENTS = insert(models.FeedbackEvent).returning(models.FeedbackEvent.id, sort_by_parameter_order=True)


class _PooledBatchSql:
    """A batch's two statements on a pooled SQLAlchemy connection (threads, PostgreSQL)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def rows_with_keys(self, keys: Sequence[str]) -> Sequence[StoredRow]:
        return cast(Sequence[StoredRow], self._connection.execute(_EVENTS_BY_KEY, {"keys": list(keys)}).all())

    def insert(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        return list(self._connection.execute(_INSERT_EVENTS, list(rows)).scalars().all())


class Store:
    def __init__(self, session_factory: sessionmaker) -> None:
        self._sessions = session_factory
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, Engine):
            raise TypeError("Store needs a sessionmaker bound to an Engine")
        self._engine = bind
        # A SQLite read in WAL mode never waits for a writer and takes ~0.2 ms: cheaper on the event
        # loop than the ~0.4 ms thread hand-off. A PostgreSQL read is a network round trip.
        self.reads_inline = bind.dialect.name == "sqlite"
        # SQLite takes one writer at a time and makes the others sleep-and-retry: feedback writers
        # queue on a lock instead (backend/db/writelock.py). PostgreSQL needs none.
        self._write_lock: SqliteWriteLock | contextlib.nullcontext[None] = (
            SqliteWriteLock(sqlite_file(bind.url))
            if bind.dialect.name == "sqlite"
            else contextlib.nullcontext()
        )
        # The event loop's batches, on a SQLite file (backend/db/loopconnection.py).
        self._loop_connection = LoopConnection.for_engine(bind)

    def close(self) -> None:
        """Closes the event loop's connection (the engine's pool is the engine's to dispose)."""
        if self._loop_connection is not None:
            self._loop_connection.close()

    def ping(self) -> None:
        with self._sessions() as db:
            db.execute(text("SELECT 1"))

    # -- users and credentials --
    def create_user(
        self, user_id: str, profile: dict[str, object], interests: Sequence[str], password_hash: str | None
    ) -> UserRecord:
        with self._sessions() as db:
            row = models.User(
                user_id=user_id,
                age=profile.get("age"),
                gender=profile.get("gender"),
                occupation=profile.get("occupation"),
                location=profile.get("location"),
                interests=list(interests),
                created_at=now(),
            )
            db.add(row)
            try:
                db.flush()
                if password_hash is not None:
                    db.add(models.Credential(user_pk=row.id, password_hash=password_hash, updated_at=now()))
                db.commit()
            except IntegrityError as exc:
                db.rollback()
                raise UserExistsError(user_id) from exc
            return _user(row)

    def get_user(self, user_id: str) -> UserRecord | None:
        with self._sessions() as db:
            row = db.scalar(select(models.User).where(models.User.user_id == user_id))
            return _user(row) if row is not None else None

    def user_with_password_hash(self, user_id: str) -> tuple[UserRecord, str] | None:
        with self._sessions() as db:
            found = db.execute(
                select(models.User, models.Credential.password_hash)
                .join(models.Credential, models.Credential.user_pk == models.User.id)
                .where(models.User.user_id == user_id)
            ).first()
            return (_user(found[0]), found[1]) if found is not None else None

    # -- sessions --
    def create_session(self, user_pk: int, ttl: timedelta) -> tuple[str, str, datetime]:
        """New session for a user: (token for the cookie, CSRF token, expiry)."""
        token, csrf = security.new_token(), security.new_token()
        created = now()
        with self._sessions() as db:
            db.add(
                models.Session(
                    token_hash=security.digest(token),
                    user_pk=user_pk,
                    csrf_token=csrf,
                    created_at=created,
                    expires_at=created + ttl,
                )
            )
            db.commit()
        return token, csrf, created + ttl

    def get_session(self, token: str) -> SessionRecord | None:
        with self._sessions() as db:
            found = db.execute(
                select(models.Session, models.User)
                .join(models.User, models.User.id == models.Session.user_pk)
                .where(models.Session.token_hash == security.digest(token))
            ).first()
            if found is None:
                return None
            sess, user = found
            if as_utc(sess.expires_at) <= now():
                return None
            return SessionRecord(
                user=_user(user), csrf_token=sess.csrf_token, expires_at=as_utc(sess.expires_at)
            )

    def delete_session(self, token: str) -> None:
        with self._sessions() as db:
            db.execute(delete(models.Session).where(models.Session.token_hash == security.digest(token)))
            db.commit()

    # -- API keys --
    def create_api_key(self, name: str, scopes: Sequence[str]) -> tuple[str, ApiKeyRecord]:
        """A new key: returns the secret (shown once) and the stored record (hash only)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {list(scopes)}")
        key = security.new_api_key()
        with self._sessions() as db:
            row = models.ApiKey(
                name=name,
                key_hash=security.digest(key),
                prefix=key[:10],
                scopes=",".join(s for s in SCOPES if s in scopes),
                created_at=now(),
            )
            db.add(row)
            db.commit()
            return key, ApiKeyRecord(
                id=row.id, name=row.name, prefix=row.prefix, scopes=frozenset(row.scopes.split(","))
            )

    def get_api_key(self, key: str) -> ApiKeyRecord | None:
        return self.get_api_key_by_digest(security.digest(key))

    def get_api_key_by_digest(self, key_digest: str) -> ApiKeyRecord | None:
        table = models.ApiKey
        with self._sessions() as db:
            # Columns, not the ORM entity: this runs on cache misses of the hot path.
            row = db.execute(
                select(table.id, table.name, table.prefix, table.scopes, table.revoked_at).where(
                    table.key_hash == key_digest
                )
            ).first()
            if row is None or row.revoked_at is not None:
                return None
            return ApiKeyRecord(
                id=row.id, name=row.name, prefix=row.prefix, scopes=frozenset(row.scopes.split(","))
            )

    # -- feedback --
    def add_feedback(
        self,
        user_id: str,
        item_id: str,
        event: str,
        value: float | None,
        timestamp: datetime | None,
        idempotency_key: str | None,
    ) -> tuple[FeedbackRecord, bool]:
        """Store one event; returns (record, created). A repeated idempotency key returns the
        first event with created=False; the key is scoped to the user."""
        outcome = self.add_feedback_batch(
            [FeedbackWrite(user_id, item_id, event, value, timestamp, idempotency_key)]
        )[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def add_feedback_batch(
        self, writes: Sequence[FeedbackWrite]
    ) -> list[tuple[FeedbackRecord, bool] | IdempotencyConflictError]:
        """Store several events in one transaction (one commit: backend/feedbackwriter.py groups
        concurrent requests this way). Per write, in order: (record, created) as `add_feedback`
        returns, or the conflict of a key reused for another event. A database error fails the
        whole batch and stores none of it."""
        # A bare connection and prebuilt statements: the ORM session cost ~5x the SQL here.
        with self._write_lock, self._engine.connect() as connection:
            return self._store_batch(connection, writes)

    def add_feedback_batch_now(
        self, writes: Sequence[FeedbackWrite]
    ) -> list[tuple[FeedbackRecord, bool] | IdempotencyConflictError] | None:
        """As `add_feedback_batch`, but never waits for another writer: None, with nothing
        stored, when one holds the write lock now, or when the database is not a SQLite file
        (PostgreSQL's writes are a network round trip). The event loop calls this
        (backend/feedbackwriter.py): a SQLite batch is well under 1 ms of work that would hold
        the GIL in a worker thread anyway."""
        if self._loop_connection is None or not isinstance(self._write_lock, SqliteWriteLock):
            return None
        loop_connection = self._loop_connection
        with self._write_lock.taken_now() as taken:
            if not taken:
                return None
            # A writer that skips our lock (the CLI, a hand-run sqlite3) makes this None too:
            # the loop's connection never waits in SQLite's busy handler.
            stamped = _stamped(writes)
            return loop_connection.run_in_transaction(lambda sql: self._insert_batch(sql, stamped))

    def _store_batch(
        self, connection: Any, writes: Sequence[FeedbackWrite]
    ) -> list[tuple[FeedbackRecord, bool] | IdempotencyConflictError]:
        stamped = _stamped(writes)
        try:
            with connection.begin():
                return self._insert_batch(_PooledBatchSql(connection), stamped)
        except IntegrityError:
            # Another process stored one of the keys since the lookup (that transaction was
            # rolled back): row by row, each insert skipping a taken key by itself.
            with connection.begin():
                return [self._add_keyed(connection, w, when) for w, when in stamped]

    @staticmethod
    def _insert_batch(
        sql: BatchSql, stamped: Sequence[tuple[FeedbackWrite, datetime]]
    ) -> list[tuple[FeedbackRecord, bool] | IdempotencyConflictError]:
        """Two statements whatever the batch size: one lookup of the batch's idempotency keys, one
        insert of the new events."""
        keys = [_scoped_key(w) for w, _ in stamped]
        stored: dict[str, FeedbackRecord] = {}
        wanted = {k for k in keys if k is not None}
        if wanted:
            stored = {
                key: FeedbackRecord(event_id, user_id, item_id, event, value, as_utc(timestamp))
                for event_id, user_id, item_id, event, value, timestamp, key in sql.rows_with_keys(
                    list(wanted)
                )
            }
        new: list[int] = []  # indices of the writes to insert
        claimed: dict[str, int] = {}  # key -> the write of this batch that stores it
        for i, key in enumerate(keys):
            if key is None or (key not in stored and key not in claimed):
                new.append(i)
                if key is not None:
                    claimed[key] = i
        created: dict[int, FeedbackRecord] = {}
        if new:
            created_at = now()
            ids = sql.insert(
                [
                    {
                        "user_id": stamped[i][0].user_id,
                        "item_id": stamped[i][0].item_id,
                        "event": stamped[i][0].event,
                        "value": stamped[i][0].value,
                        "timestamp": stamped[i][1],
                        "created_at": created_at,
                        "idempotency_key": keys[i],
                    }
                    for i in new
                ]
            )
            for i, new_id in zip(new, ids, strict=True):
                w, when = stamped[i]
                created[i] = FeedbackRecord(new_id, w.user_id, w.item_id, w.event, w.value, as_utc(when))
        outcomes: list[tuple[FeedbackRecord, bool] | IdempotencyConflictError] = []
        for i, ((write, _), key) in enumerate(zip(stamped, keys, strict=True)):
            if i in created:
                outcomes.append((created[i], True))
                continue
            assert key is not None  # only keyed writes replay
            first = stored[key] if key in stored else created[claimed[key]]
            outcomes.append(_replay(write, first))
        return outcomes

    @staticmethod
    def _add_keyed(
        connection: Any, write: FeedbackWrite, when: datetime
    ) -> tuple[FeedbackRecord, bool] | IdempotencyConflictError:
        """Insert one event unless its key is taken (by anyone, now included): never raises for
        a taken key, so one replay does not undo the rest of the batch."""
        table = models.FeedbackEvent
        key = _scoped_key(write)
        statement = _dialect_insert(connection.dialect.name, table).values(
            user_id=write.user_id,
            item_id=write.item_id,
            event=write.event,
            value=write.value,
            timestamp=when,
            created_at=now(),
            idempotency_key=key,
        )
        if key is not None:
            statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
        new_id = connection.execute(statement.returning(table.id)).scalar()
        if new_id is not None:
            return FeedbackRecord(
                new_id, write.user_id, write.item_id, write.event, write.value, as_utc(when)
            ), True
        first = connection.execute(
            select(table.id, table.item_id, table.event, table.value, table.timestamp).where(
                table.idempotency_key == key
            )
        ).one()
        return _replay(
            write,
            FeedbackRecord(
                first.id, write.user_id, first.item_id, first.event, first.value, as_utc(first.timestamp)
            ),
        )

    def feedback_for(self, user_id: str, limit: int = 500) -> list[FeedbackRecord]:
        """The user's most recent events, oldest first."""
        with self._sessions() as db:
            rows = db.scalars(
                select(models.FeedbackEvent)
                .where(models.FeedbackEvent.user_id == user_id)
                .order_by(models.FeedbackEvent.id.desc())
                .limit(limit)
            ).all()
            return [_feedback(r) for r in reversed(rows)]

    def user_and_feedback(
        self, user_id: str, limit: int = 500
    ) -> tuple[UserRecord | None, list[FeedbackRecord]]:
        """The stored user (or None) and their most recent events, oldest first: one transaction,
        plain column rows. The read path calls this on every cache miss, so it runs two prebuilt
        statements on a bare connection: an ORM session and freshly built selects cost ~4x the
        queries themselves."""
        with self._engine.connect() as conn:
            user = conn.execute(_USER_ROW, {"user_id": user_id}).first()
            rows = conn.execute(_RECENT_EVENTS, {"user_id": user_id, "limit": limit}).all()
        record = _user(cast(Row[Any], user)) if user is not None else None
        feedback = [
            FeedbackRecord(r.id, user_id, r.item_id, r.event, r.value, as_utc(r.timestamp))
            for r in reversed(rows)
        ]
        return record, feedback

    def count_feedback(self) -> int:
        with self._sessions() as db:
            return int(db.scalar(select(func.count(models.FeedbackEvent.id))) or 0)
