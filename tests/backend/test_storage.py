"""The Store against SQLite (always) and a throwaway PostgreSQL 15 server (marker postgres)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from backend import security
from backend.db.engine import make_engine, make_session_factory, upgrade_database
from backend.store import FeedbackWrite, IdempotencyConflictError, Store, UserExistsError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade_database(engine)
    upgrade_database(engine)  # idempotent: a second start must not fail
    assert {"users", "credentials", "sessions", "api_keys", "feedback_events"} <= set(
        inspect(engine).get_table_names()
    )
    yield Store(make_session_factory(engine))
    if request.param == "postgres":  # the server is shared by the session: leave it empty
        with engine.begin() as conn:
            for table in (
                "feedback_events",
                "sessions",
                "credentials",
                "api_keys",
                "users",
                "change_counters",
                "alembic_version",
            ):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    engine.dispose()


def test_users_and_password_hashes(store: Store) -> None:
    user = store.create_user(
        "ada", {"age": 31, "gender": "F"}, ["Books"], security.hash_password("s3cret pass")
    )
    assert user.profile() == {"age": 31, "gender": "F"} and user.interests == ("Books",)
    with pytest.raises(UserExistsError):
        store.create_user("ada", {}, [], None)
    found = store.user_with_password_hash("ada")
    assert found is not None
    stored_user, password_hash = found
    assert stored_user.user_id == "ada"
    assert "s3cret" not in password_hash and password_hash.startswith("$argon2")
    assert security.verify_password(password_hash, "s3cret pass")
    assert not security.verify_password(password_hash, "wrong")
    assert store.user_with_password_hash("nobody") is None


def test_sessions_expire_and_end(store: Store) -> None:
    user = store.create_user("bob", {}, [], None)
    token, csrf, _ = store.create_session(user.pk, timedelta(hours=1))
    session = store.get_session(token)
    assert session is not None and session.user.user_id == "bob" and session.csrf_token == csrf
    store.delete_session(token)
    assert store.get_session(token) is None
    expired, _, _ = store.create_session(user.pk, timedelta(seconds=-1))
    assert store.get_session(expired) is None
    assert store.get_session("not-a-token") is None


def test_api_keys_are_stored_hashed(store: Store) -> None:
    key, record = store.create_api_key("client", ["read", "feedback"])
    assert record.scopes == {"read", "feedback"}
    fetched = store.get_api_key(key)
    assert fetched is not None and fetched.id == record.id
    assert store.get_api_key(key + "x") is None
    with pytest.raises(ValueError, match="scopes"):
        store.create_api_key("bad", ["root"])


def test_a_feedback_batch_is_one_transaction_with_per_write_outcomes(store: Store) -> None:
    store.add_feedback("u1", "i1", "like", None, None, "stored")
    outcomes = store.add_feedback_batch(
        [
            FeedbackWrite("u1", "i2", "view", None, None, None),
            FeedbackWrite("u1", "i1", "like", None, None, "stored"),  # replay of a stored key
            FeedbackWrite("u1", "i3", "like", None, None, "stored"),  # same key, other event
            FeedbackWrite("u2", "i4", "cart", None, None, "fresh"),
            FeedbackWrite("u2", "i4", "cart", None, None, "fresh"),  # replay within the batch
            FeedbackWrite("u2", "i5", "cart", None, None, "fresh"),  # conflict within the batch
            FeedbackWrite("u1", "i4", "rating", 4.0, None, "fresh"),  # keys are per user
        ]
    )
    assert isinstance(outcomes[2], IdempotencyConflictError)
    assert isinstance(outcomes[5], IdempotencyConflictError)
    ok = {i: o for i, o in enumerate(outcomes) if not isinstance(o, Exception)}
    assert [created for _, created in ok.values()] == [True, False, True, False, True]
    assert ok[4][0].id == ok[3][0].id and ok[1][0].item_id == "i1"
    assert len({ok[i][0].id for i in (0, 3, 6)}) == 3
    assert store.count_feedback() == 4  # the earlier event + three new ones
    assert [(e.item_id, e.event) for e in store.feedback_for("u2")] == [("i4", "cart")]


def test_each_write_of_a_batch_gets_the_id_of_its_own_row(store: Store) -> None:
    store.add_feedback("u0", "i0", "like", None, None, None)
    writes = [FeedbackWrite("u1", f"i{n}", "click", None, None, f"k{n}" if n % 2 else None) for n in range(7)]
    outcomes = store.add_feedback_batch(writes)
    returned = {o[0].item_id: o[0].id for o in outcomes if not isinstance(o, Exception)}
    assert returned == {e.item_id: e.id for e in store.feedback_for("u1")} and len(returned) == 7


def test_timestamps_are_stored_as_the_same_instant_in_utc(store: Store) -> None:
    plus_two = datetime(2026, 11, 28, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2026, 11, 28, 10, 0)  # taken as UTC
    (sent, _), (unzoned, _) = (
        store.add_feedback("u1", "i1", "click", None, plus_two, None),
        store.add_feedback("u1", "i2", "click", None, naive, "k"),
    )
    read = store.feedback_for("u1")
    assert [e.timestamp for e in read] == [sent.timestamp, unzoned.timestamp]
    assert read[0].timestamp == plus_two and read[0].timestamp.utcoffset() == timedelta(0)
    assert read[1].timestamp == naive.replace(tzinfo=UTC)
    _, history = store.user_and_feedback("u1")  # the read path's own statements
    assert [e.timestamp for e in history] == [e.timestamp for e in read]


def test_a_key_taken_by_another_process_mid_batch_falls_back_row_by_row(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Store(store._sessions)  # another writer on the same database, not taking the
    other._write_lock = contextlib.nullcontext()  # write lock (a hand-run script, say)

    def lose_the_race(connection: object, stamped: object) -> object:
        other.add_feedback("u1", "i1", "like", None, None, "k")  # commits between lookup and insert
        raise IntegrityError("INSERT INTO feedback_events", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(store, "_insert_batch", lose_the_race)
    outcomes = store.add_feedback_batch(
        [
            FeedbackWrite("u1", "i1", "like", None, None, "k"),
            FeedbackWrite("u1", "i2", "view", None, None, None),
        ]
    )
    replay, fresh = outcomes
    assert not isinstance(replay, Exception) and replay[1] is False
    assert not isinstance(fresh, Exception) and fresh[1] is True
    assert store.count_feedback() == 2


def test_feedback_idempotency_is_exactly_once(store: Store) -> None:
    first, created = store.add_feedback("u1", "i1", "like", None, None, "key-1")
    again, created_again = store.add_feedback("u1", "i1", "like", None, None, "key-1")
    assert created and not created_again and again.id == first.id
    with pytest.raises(IdempotencyConflictError):
        store.add_feedback("u1", "i2", "like", None, None, "key-1")
    # Keys are per user: another shopper may use the same key.
    _, other_created = store.add_feedback("u2", "i1", "like", None, None, "key-1")
    store.add_feedback("u1", "i3", "rating", 5.0, None, None)
    events = store.feedback_for("u1")
    assert [(e.item_id, e.event) for e in events] == [("i1", "like"), ("i3", "rating")]
    assert other_created and store.count_feedback() == 3
    assert events[0].timestamp.tzinfo is not None
