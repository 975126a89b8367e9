"""Repeated reads of recommendations are answered from memory (backend/readcache.py),
and never when that could differ from what the app would answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.recommender import Recommender
from backend.settings import Settings
from tests.backend.conftest import api_key, signup

RECS = "/api/v1/recommendations"


@contextmanager
def counted(client: TestClient) -> Iterator[list[int]]:
    """Counts Recommender.recommend calls (each one is a request the cache did not answer)."""
    recommender = client.app.state.service.recommender  # type: ignore[attr-defined]
    calls: list[int] = []
    original = recommender.recommend

    def recommend(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    recommender.recommend = recommend
    try:
        yield calls
    finally:
        del recommender.recommend


def test_a_repeated_key_read_is_answered_from_memory_byte_for_byte(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    params = {"user_id": "u03", "k": 4, "explain": "true"}
    with counted(client) as calls:
        first = client.get(RECS, params=params, headers=read_headers)
        again = client.get(RECS, params=params, headers=read_headers)
        other_k = client.get(RECS, params={**params, "k": 3}, headers=read_headers)
    assert first.status_code == again.status_code == other_k.status_code == 200
    assert len(calls) == 2  # the repeat was answered from memory, k=3 is another request
    assert again.content == first.content
    for name in ("content-type", "x-content-type-options", "x-frame-options"):
        assert again.headers[name] == first.headers[name]
    metrics = client.get("/metrics").text
    # Hits are labelled by route like computed answers, and their explanations are counted.
    count = (
        'explainrec_request_duration_seconds_count{method="GET",route="/api/v1/recommendations",status="200"}'
    )
    assert f"{count} 3.0" in metrics
    assert 'explainrec_explanations_total{source="template"} 11.0' in metrics
    assert 'explainrec_response_cache_total{result="hit"} 1.0' in metrics
    assert 'explainrec_response_cache_total{result="miss"} 2.0' in metrics


def test_only_keys_with_read_scope_are_answered_from_memory(
    client: TestClient, read_headers: dict[str, str]
) -> None:
    params = {"user_id": "u04", "k": 5}
    assert client.get(RECS, params=params, headers=read_headers).status_code == 200
    feedback_only = api_key(client, "feedback")
    assert client.get(RECS, params=params, headers=feedback_only).status_code == 403
    assert client.get(RECS, params=params, headers={"X-API-Key": "not-a-key"}).status_code == 401
    assert client.get(RECS, params=params).status_code == 401


def test_a_signed_in_shoppers_repeat_is_answered_from_memory_and_only_to_them(settings: Settings) -> None:
    with TestClient(create_app(settings)) as erin, TestClient(create_app(settings)) as spare:
        # Two shoppers on one app: `spare` only holds the second shopper's cookie jar.
        signup(erin, "erin", age=30, interests=["Garden"])
        signup(spare, "frank", age=60, interests=["Books"])
        frank_cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in spare.cookies.items())}
        with counted(erin) as calls:
            frank_first = erin.get(RECS, params={"k": 3}, headers=frank_cookie)  # frank's check cached
            assert frank_first.status_code == 200 and len(calls) == 1
            calls.clear()
            first = erin.get(RECS, params={"k": 5})
            again = erin.get(RECS, params={"k": 5})
            assert len(calls) == 1 and again.content == first.content  # erin's repeat: from memory
            erin_cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in erin.cookies.items())}
            erin.cookies.clear()
            franks = erin.get(RECS, params={"k": 5}, headers=frank_cookie)
            assert franks.status_code == 200 and franks.json()["user_id"] == "frank"
            assert len(calls) == 2  # the same request from another shopper is computed for them
            forbidden = erin.get(RECS, params={"k": 5, "user_id": "erin"}, headers=frank_cookie)
            assert forbidden.status_code == 403
            assert erin.get(RECS, params={"k": 5}).status_code == 401  # no cookie: nobody's answer
        csrf = erin_cookie["Cookie"].split("csrf_token=")[1].split(";")[0]
        logout = erin.post("/api/v1/auth/logout", headers={**erin_cookie, "X-CSRF-Token": csrf})
        assert logout.status_code == 204
        assert erin.get(RECS, params={"k": 5}, headers=erin_cookie).status_code == 401


def test_another_bundle_version_is_never_answered_from_an_old_entry(
    client: TestClient, read_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    params = {"user_id": "u05", "k": 5}
    first = client.get(RECS, params=params, headers=read_headers).json()
    recommender: Recommender = client.app.state.service.recommender  # type: ignore[attr-defined]
    monkeypatch.setattr(recommender, "version", "v-next")
    after = client.get(RECS, params=params, headers=read_headers).json()
    assert first["model_version"] != "v-next" and after["model_version"] == "v-next"


def test_a_write_drops_only_its_own_shoppers_answers(
    client: TestClient, read_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    mine, other = {"user_id": "u06", "k": 5}, {"user_id": "u08", "k": 5}
    with counted(client) as calls:
        before = client.get(RECS, params=mine, headers=read_headers).json()
        client.get(RECS, params=other, headers=read_headers)
        liked = before["items"][0]["item_id"]
        click = {"user_id": "u06", "item_id": liked, "event": "dismiss"}
        assert client.post("/api/v1/feedback", json=click, headers=admin_headers).status_code == 201
        calls.clear()
        after = client.get(RECS, params=mine, headers=read_headers).json()
        assert len(calls) == 1  # u06 wrote: computed again, and the dismissed item is gone
        assert liked not in [item["item_id"] for item in after["items"]]
        client.get(RECS, params=other, headers=read_headers)
        assert len(calls) == 1  # u08's answer survived u06's write
        api_key(client, "read")  # a key change: key checks are read again, then answers reused
        client.get(RECS, params=other, headers=read_headers)
        assert len(calls) == 2
        client.get(RECS, params=other, headers=read_headers)
        assert len(calls) == 2


def test_the_setting_turns_it_off(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"response_cache": False}))) as client:
        headers = api_key(client, "read")
        with counted(client) as calls:
            for _ in range(3):
                assert client.get(RECS, params={"user_id": "u07"}, headers=headers).status_code == 200
        assert len(calls) == 3
