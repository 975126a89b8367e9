"""The read path's caches stay coherent across workers and keep the database off cached reads;
plus the fixes found by the reliability tests (documented 409s, no paths on /readyz, clear
deep-nesting error, profile options)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import event

from backend.app import create_app
from backend.hotcache import MISS, DatabaseWatch, HotCache
from backend.recommender import RecQuery, Shopper
from backend.routes.recommendations import to_payload, to_response
from backend.settings import Settings
from backend.store import ApiKeyRecord, SessionRecord, UserRecord
from tests.backend.conftest import api_key, signup
from tests.support.telemetry import count_tracer_provider_lookups

RECS = "/api/v1/recommendations"


def _statements(client: TestClient) -> list[str]:
    """SQL statements the app's engine runs from now on."""
    engine = client.app.state.service.store._sessions.kw["bind"]  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_cached_reads_run_no_sql_and_a_write_refreshes_them(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    params = {"user_id": "u01", "k": 5}
    first = client.get(RECS, params=params, headers=admin_headers)
    assert first.status_code == 200
    statements = _statements(client)
    again = client.get(RECS, params=params, headers=admin_headers)
    assert again.json() == first.json()
    assert statements == []  # key check and shopper both served from the cache
    liked = first.json()["items"][0]["item_id"]
    posted = client.post(
        "/api/v1/feedback", json={"user_id": "u01", "item_id": liked, "event": "like"}, headers=admin_headers
    )
    assert posted.status_code == 201
    statements.clear()
    after = client.get(RECS, params=params, headers=admin_headers).json()
    assert liked not in [i["item_id"] for i in after["items"]]  # seen now, so excluded
    # The write refreshed the shopper but not the key check: no api_keys read.
    assert statements and not [s for s in statements if "api_keys" in s]


def test_feedback_through_one_worker_changes_recommendations_from_another(
    settings: Settings,
) -> None:
    """Two apps on one SQLite file stand for two uvicorn workers (each has its own caches)."""
    with TestClient(create_app(settings)) as worker_a, TestClient(create_app(settings)) as worker_b:
        headers = api_key(worker_a, "read", "feedback", "admin")
        params = {"user_id": "u02", "k": 10}
        before = worker_b.get(RECS, params=params, headers=headers).json()
        assert worker_b.get(RECS, params=params, headers=headers).json() == before  # cached on B
        liked = [i["item_id"] for i in before["items"][:3]]
        for item in liked:
            body = {"user_id": "u02", "item_id": item, "event": "like"}
            assert worker_a.post("/api/v1/feedback", json=body, headers=headers).status_code == 201
        after = worker_b.get(RECS, params=params, headers=headers).json()
        assert not set(liked) & {i["item_id"] for i in after["items"]}
        assert after["items"] != before["items"]


def test_a_key_revoked_through_another_worker_stops_at_once(settings: Settings) -> None:
    with TestClient(create_app(settings)) as worker_a, TestClient(create_app(settings)) as worker_b:
        headers = api_key(worker_a, "read")
        assert worker_b.get(RECS, params={"user_id": "u00"}, headers=headers).status_code == 200
        engine = worker_a.app.state.service.store._sessions.kw["bind"]  # type: ignore[attr-defined]
        with engine.begin() as db:
            db.exec_driver_sql("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP")
        assert worker_b.get(RECS, params={"user_id": "u00"}, headers=headers).status_code == 401


def test_a_signed_in_shoppers_repeated_reads_skip_the_session_table(client: TestClient) -> None:
    signup(client, "erin", interests=["Garden"])
    first = client.get(RECS, params={"k": 5})
    assert first.status_code == 200 and first.json()["user_id"] == "erin"
    statements = _statements(client)
    again = client.get(RECS, params={"k": 5})
    assert again.json() == first.json()
    assert not [s for s in statements if "sessions" in s]  # the cookie was checked from memory


def test_a_logout_through_another_worker_ends_the_session_at_once(settings: Settings) -> None:
    with TestClient(create_app(settings)) as worker_a, TestClient(create_app(settings)) as worker_b:
        csrf = signup(worker_a, "frank")
        worker_b.cookies.update(worker_a.cookies)
        assert worker_b.get(RECS, params={"k": 3}).status_code == 200
        assert worker_b.get(RECS, params={"k": 3}).status_code == 200  # now cached on B
        assert worker_a.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert worker_b.get(RECS, params={"k": 3}).status_code == 401


def test_a_cached_session_is_refused_once_it_expires(tmp_path: Path) -> None:
    cache = HotCache(_migrated_watch(tmp_path / "watch.db"))
    seen = cache.sync()
    user = UserRecord(1, "gina")
    live = SessionRecord(user, "csrf", datetime.now(UTC) + timedelta(hours=1))
    cache.put_session("d1", live, seen)
    assert cache.session("d1") == live
    cache.put_session("d2", SessionRecord(user, "csrf", datetime.now(UTC) - timedelta(seconds=1)), seen)
    assert cache.session("d2") is MISS
    cache.watch.close()


def _migrated_watch(path: Path) -> DatabaseWatch:
    from backend.db.engine import make_engine, upgrade_database

    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    engine.dispose()
    return DatabaseWatch.for_url(f"sqlite:///{path}")


FEEDBACK_ROW = (
    "INSERT INTO feedback_events (user_id, item_id, event, timestamp, created_at) "
    "VALUES (?, 'i1', 'like', '2026-11-29', '2026-11-29')"
)


def _cache_after_some_feedback(path: Path) -> HotCache:
    """A cache watching a migrated database that already holds one feedback row (of u0)."""
    import sqlite3

    cache = HotCache(_migrated_watch(path))
    with sqlite3.connect(path) as db:
        db.execute(FEEDBACK_ROW, ("u0",))
    return cache


def test_hot_cache_keeps_key_checks_through_other_writes_but_not_through_key_changes(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "watch.db"
    cache = HotCache(_migrated_watch(path), key_ttl_s=30)
    record = ApiKeyRecord(1, "k", "erk_abc", frozenset({"read"}))
    seen = cache.sync()
    assert seen.data is not None and seen.keys == 0
    assert cache.sync() == seen  # nothing committed: the PRAGMA alone answers, same counter
    cache.put_api_key("d1", record, seen)
    cache.put_shopper(Shopper("u1"), seen)
    assert cache.api_key("d1") == record and cache.shopper("u1") == Shopper("u1")

    with sqlite3.connect(path) as db:  # another process writes feedback
        db.execute(
            "INSERT INTO feedback_events (user_id, item_id, event, timestamp, created_at) "
            "VALUES ('u1', 'i1', 'like', '2026-11-28', '2026-11-28')"
        )
    before_write = seen
    seen = cache.sync()
    assert cache.shopper("u1") is MISS  # shoppers follow every commit
    assert cache.api_key("d1") == record  # key checks do not
    cache.put_shopper(Shopper("u1"), before_write)  # read before the write: not kept
    assert cache.shopper("u1") is MISS
    cache.put_api_key("d2", record, before_write)  # no key changed since: kept
    assert cache.api_key("d2") == record

    with sqlite3.connect(path) as db:  # a hand-run revocation: the trigger bumps the counter
        db.execute(
            "INSERT INTO api_keys (name, key_hash, prefix, scopes, created_at) "
            "VALUES ('k', 'h', 'erk_abc', 'read', '2026-11-28')"
        )
        db.execute("UPDATE api_keys SET revoked_at = '2026-11-28'")
    before_revocation = seen
    assert cache.sync().keys == 2
    assert cache.api_key("d1") is MISS and cache.api_key("d2") is MISS
    cache.put_api_key("d1", record, before_revocation)  # read before the revocation: not kept
    assert cache.api_key("d1") is MISS
    cache.watch.close()


def test_new_feedback_drops_only_the_shoppers_it_names(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "watch.db"
    cache = _cache_after_some_feedback(path)
    seen = cache.sync()
    session = SessionRecord(UserRecord(1, "u2"), "csrf", datetime.now(UTC) + timedelta(hours=1))
    for user_id in ("u1", "u2"):
        cache.put_shopper(Shopper(user_id), seen)
    cache.put_session("d1", session, seen)

    with sqlite3.connect(path) as db:  # another worker writes feedback for u1 (two rows)
        db.execute(FEEDBACK_ROW, ("u1",))
        db.execute(FEEDBACK_ROW, ("u1",))
    seen = cache.sync()
    assert cache.shopper("u1") is MISS  # its feedback changed
    assert cache.shopper("u2") == Shopper("u2") and cache.session("d1") == session  # untouched
    before = seen
    with sqlite3.connect(path) as db:  # while a request reads u3 and u1, u1 gets feedback again
        db.execute(FEEDBACK_ROW, ("u1",))
    seen = cache.sync()
    cache.put_shopper(Shopper("u3"), before)  # read before that commit, which did not touch u3: kept
    cache.put_shopper(Shopper("u1"), before)  # may predate its own new feedback: not kept
    assert cache.shopper("u3") == Shopper("u3") and cache.shopper("u1") is MISS

    with sqlite3.connect(path) as db:  # a profile change: not tied to feedback ids
        db.execute("INSERT INTO users (user_id, interests, created_at) VALUES ('u9', '[]', '2026-11-29')")
    before, seen = seen, cache.sync()
    assert cache.shopper("u2") is MISS and cache.session("d1") is MISS  # everything dropped
    cache.put_shopper(Shopper("u4"), before)  # read before a change of unknown reach: not kept
    cache.put_session("d2", session, before)
    assert cache.shopper("u4") is MISS and cache.session("d2") is MISS

    cache.put_shopper(Shopper("u2"), seen)
    with sqlite3.connect(path) as db:  # a deleted feedback row cannot be named by a new id
        db.execute("DELETE FROM feedback_events WHERE user_id = 'u0'")
    cache.sync()
    assert cache.shopper("u2") is MISS
    cache.watch.close()


def test_hot_cache_without_the_key_counter_drops_key_checks_on_every_change(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "watch.db"
    with sqlite3.connect(path) as db:  # a database not migrated to 0002
        db.execute("CREATE TABLE t (x INTEGER)")
    cache = HotCache(DatabaseWatch.for_url(f"sqlite:///{path}"), key_ttl_s=30)
    record = ApiKeyRecord(1, "k", "erk_abc", frozenset({"read"}))
    seen = cache.sync()
    assert seen.data is not None and seen.keys is None
    cache.put_api_key("d1", record, seen)
    assert cache.api_key("d1") == record
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO t VALUES (1)")
    cache.sync()
    assert cache.api_key("d1") is MISS
    cache.put_api_key("d1", record, seen)  # read before the change: not kept
    assert cache.api_key("d1") is MISS
    cache.watch.close()


def test_without_a_change_signal_shoppers_are_not_cached_and_keys_expire() -> None:
    cache = HotCache(DatabaseWatch.for_url("postgresql+psycopg://u@127.0.0.1/db"), key_ttl_s=0)
    seen = cache.sync()
    assert seen.data is None and seen.keys is None
    cache.put_shopper(Shopper("u1"), seen)
    assert cache.shopper("u1") is MISS
    cache.put_api_key("d1", ApiKeyRecord(1, "k", "erk_abc"), seen)
    assert cache.api_key("d1") is MISS  # ttl 0: expired at once


def test_fast_json_matches_the_documented_model(client: TestClient) -> None:
    recommender = client.app.state.service.recommender  # type: ignore[attr-defined]
    for shopper in (Shopper("u00"), Shopper("nobody"), Shopper(None, {"gender": "F"}, ["Books"])):
        result = recommender.recommend(shopper, RecQuery(k=4, explain=True))
        assert to_payload(result) == to_response(result).model_dump(mode="json")


def test_signup_and_demo_document_their_409(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "409" in paths["/api/v1/auth/signup"]["post"]["responses"]
    assert "409" in paths["/api/v1/auth/demo"]["post"]["responses"]


def test_readyz_and_reload_errors_show_no_absolute_paths(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(workdir=tmp_path))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "no bundle" in ready.json()["detail"]
        assert str(tmp_path) not in ready.text and "/tmp" not in ready.text
        items = client.get("/api/v1/items")
        assert items.status_code == 503 and str(tmp_path) not in items.text


def test_deeply_nested_json_gets_a_clear_400(client: TestClient) -> None:
    body = '{"profile": ' * 5000 + "{}" + "}" * 5000
    response = client.post(
        "/api/v1/recommendations/cold-start", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


def test_profile_options_list_the_bundles_known_values(client: TestClient) -> None:
    response = client.get("/api/v1/profile-options")
    assert response.status_code == 200
    body = response.json()
    spec = client.app.state.service.recommender.spec  # type: ignore[attr-defined]
    assert body["choices"] == {k: sorted(v) for k, v in spec.profile_vocab.items()} and body["choices"]
    assert body["numeric"] == {k: list(v) for k, v in spec.profile_edges.items()}
    assert body["interests"] and set(body["interests"]) <= set(spec.categories)
    assert body["model_version"] == client.get("/readyz").json()["model_version"]
    schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/api/v1/profile-options"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("ProfileOptionsResponse")


def test_a_configured_llm_explainer_is_warmed_in_the_background(tmp_path: Path, toy_bundles: Path) -> None:
    # An OpenAI-compatible endpoint nobody listens on: building the client needs no network, and
    # explained requests fall back to templates, so start-up must not wait for the model.
    settings = Settings(
        workdir=tmp_path,
        bundle_dir=toy_bundles,
        explainer="openai",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_model="none",
        explain_timeout_s=1,
    )
    with TestClient(create_app(settings)) as client:
        thread = client.app.state.service.warm_up_thread  # type: ignore[attr-defined]
        assert thread is not None and thread.name == "explainer-warm-up"
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert client.get("/readyz").status_code == 200
    with TestClient(create_app(Settings(workdir=tmp_path / "t", bundle_dir=toy_bundles))) as client:
        assert client.app.state.service.warm_up_thread is None  # type: ignore[attr-defined]


def test_loading_a_bundle_freezes_the_long_lived_heap(settings: Settings) -> None:
    """Startup objects leave the collector's full passes (60-120 ms pauses otherwise)."""
    import gc

    from backend.state import YOUNG_GC_THRESHOLD

    gc.unfreeze()
    thresholds = gc.get_threshold()
    try:
        with TestClient(create_app(settings.model_copy(update={"freeze_heap": True}))) as client:
            frozen = gc.get_freeze_count()
            assert frozen > 10_000
            assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
            client.app.state.service.load()  # type: ignore[attr-defined]  # a reload collects and refreezes
            assert gc.get_freeze_count() > 10_000
        gc.unfreeze()
        with TestClient(create_app(settings)):  # the test suite's setting: off
            assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_stored_responses_are_bounded_by_bytes(tmp_path: Path) -> None:
    from backend.readcache import CachedResponse

    cache = HotCache(_migrated_watch(tmp_path / "db.sqlite"), response_bytes=3 * (1000 + 256))
    seen = cache.sync()

    def body(n: int) -> CachedResponse:
        return CachedResponse([], bytes([n]) * 1000, "v1", None, ())

    for n in range(4):
        cache.put_response(("/r", str(n).encode()), body(n), seen, "u1")
    assert isinstance(cache.response(("/r", b"0")), type(MISS))  # the oldest made room
    assert [cache.response(("/r", str(n).encode())).body[0] for n in (1, 2, 3)] == [1, 2, 3]
    cache.put_response(("/r", b"big"), CachedResponse([], b"x" * 10_000, "v1", None, ()), seen, "u1")
    assert isinstance(cache.response(("/r", b"big")), type(MISS))  # larger than the whole budget,
    assert not isinstance(cache.response(("/r", b"3")), type(MISS))  # so it evicted nothing


def test_stored_responses_follow_their_own_shopper(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "watch.db"
    cache = _cache_after_some_feedback(path)
    seen = cache.sync()
    for user_id in ("u1", "u2"):
        cache.put_response(("/r", user_id.encode()), user_id, seen, user_id)

    with sqlite3.connect(path) as db:  # another worker stores feedback of u1
        db.execute(FEEDBACK_ROW, ("u1",))
    cache.sync()
    assert cache.response(("/r", b"u1")) is MISS  # its list may have changed
    assert cache.response(("/r", b"u2")) == "u2"  # another shopper's write: still served
    cache.put_response(("/r", b"u1"), "stale", seen, "u1")  # computed before that write: not kept
    cache.put_response(("/r", b"u3"), "u3", seen, "u3")  # computed before it, not about u1: kept
    assert cache.response(("/r", b"u1")) is MISS and cache.response(("/r", b"u3")) == "u3"

    with sqlite3.connect(path) as db:  # a profile change: every stored response goes
        db.execute("INSERT INTO users (user_id, created_at, interests) VALUES ('u2', '2026-11-29', '[]')")
    cache.sync()
    assert cache.response(("/r", b"u2")) is MISS and cache.response(("/r", b"u3")) is MISS
    cache.watch.close()


def test_opentelemetry_is_off_by_default_and_on_when_asked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off, no request asks OpenTelemetry for its providers (a per-request cost); on, FastAPI's
    native telemetry looks for them on every request as it does by default."""
    asked = count_tracer_provider_lookups(monkeypatch)
    for enabled in (False, True):
        asked.clear()
        app = create_app(settings.model_copy(update={"opentelemetry": enabled}))
        with TestClient(app) as client:
            asked.clear()
            for _ in range(3):
                assert client.get("/healthz").status_code == 200
        assert (len(asked) >= 3) is enabled


def test_api_routes_are_matched_first_and_flat(tmp_path: Path) -> None:
    # Each request is matched against the app's routes in order: the API's busiest routes lead,
    # directly on the app router (an included router is matched twice per request), and the
    # documentation routes and the frontend's catch-all mount come after every API route.
    app = create_app(Settings(workdir=tmp_path))
    routes = app.router.routes
    paths = [getattr(route, "path", None) for route in routes]
    assert paths[:3] == ["/api/v1/recommendations", "/api/v1/recommendations/cold-start", "/api/v1/feedback"]
    served = sum(isinstance(route, APIRoute) for route in routes)
    assert served >= 15 and all(isinstance(route, APIRoute) for route in routes[:served])
    assert {"/openapi.json", "/docs", ""} <= set(paths[served:])
    assert set(app.openapi()["paths"]) <= set(paths[:served])
