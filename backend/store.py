"""The service's reads and writes to its database, returning plain records (no ORM objects leak out).

Every method opens and commits its own short transaction, so a 201 from a route means the row
is durable. Database outages surface as `sqlalchemy.exc.OperationalError`/`DBAPIError`, which
the app turns into 503 + Retry-After.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from backend import security
from backend.db import models

SCOPES = ("read", "feedback", "admin")


class UserExistsError(Exception):
    pass


class IdempotencyConflictError(Exception):
    """The idempotency key was already used for a different event."""


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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
        created_at=_utc(row.created_at),
    )


def _feedback(row: models.FeedbackEvent) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id,
        user_id=row.user_id,
        item_id=row.item_id,
        event=row.event,
        value=row.value,
        timestamp=_utc(row.timestamp),
    )


class Store:
    def __init__(self, session_factory: sessionmaker) -> None:
        self._sessions = session_factory
        bind = session_factory.kw.get("bind")
        single_writer = bind is not None and bind.dialect.name == "sqlite"
        # SQLite takes one writer at a time and makes the others retry with sleeps of up to
        # 100 ms (its busy handler): queueing this process's writers on a mutex instead keeps the
        # wait to the length of the writes ahead. Other processes still meet the busy handler.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if single_writer else contextlib.nullcontext()
        )

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
            if _utc(sess.expires_at) <= now():
                return None
            return SessionRecord(
                user=_user(user), csrf_token=sess.csrf_token, expires_at=_utc(sess.expires_at)
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
        scoped_key = f"{user_id}\x1f{idempotency_key}" if idempotency_key else None
        when = timestamp or now()
        table = models.FeedbackEvent
        with self._write_lock, self._sessions() as db:
            try:
                # A Core INSERT ... RETURNING: the ORM unit of work costs more than the write itself.
                new_id = db.execute(
                    insert(table)
                    .values(
                        user_id=user_id,
                        item_id=item_id,
                        event=event,
                        value=value,
                        timestamp=when,
                        created_at=now(),
                        idempotency_key=scoped_key,
                    )
                    .returning(table.id)
                ).scalar_one()
                db.commit()
                return FeedbackRecord(new_id, user_id, item_id, event, value, _utc(when)), True
            except IntegrityError:
                db.rollback()
            first = db.scalar(
                select(models.FeedbackEvent).where(models.FeedbackEvent.idempotency_key == scoped_key)
            )
            if first is None:  # the unique violation was not ours to explain
                raise
            if (first.item_id, first.event, first.value) != (item_id, event, value):
                raise IdempotencyConflictError(idempotency_key)
            return _feedback(first), False

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
        plain column rows (no ORM objects), since the read path calls this on every cache miss."""
        users, events = models.User, models.FeedbackEvent
        with self._sessions() as db:
            user = db.execute(
                select(
                    users.id,
                    users.user_id,
                    users.age,
                    users.gender,
                    users.occupation,
                    users.location,
                    users.interests,
                    users.created_at,
                ).where(users.user_id == user_id)
            ).first()
            rows = db.execute(
                select(events.id, events.item_id, events.event, events.value, events.timestamp)
                .where(events.user_id == user_id)
                .order_by(events.id.desc())
                .limit(limit)
            ).all()
        record = _user(user) if user is not None else None
        feedback = [
            FeedbackRecord(r.id, user_id, r.item_id, r.event, r.value, _utc(r.timestamp))
            for r in reversed(rows)
        ]
        return record, feedback

    def count_feedback(self) -> int:
        with self._sessions() as db:
            return int(db.scalar(select(func.count(models.FeedbackEvent.id))) or 0)
