"""Accounts, sessions, CSRF, API key scopes and rate limits."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from tests.backend.conftest import api_key, signup


def test_signup_sets_secure_cookies_and_login_works(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/signup",
        json={
            "username": "ada",
            "password": "correct horse 1",
            "profile": {"age": 31, "gender": "F", "interests": ["Books"]},
        },
    )
    assert response.status_code == 201
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("explainrec_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith("csrf_token="))
    assert "HttpOnly" not in csrf_cookie and response.json()["csrf_token"] in csrf_cookie
    assert response.json()["profile"]["interests"] == ["Books"]
    me = client.get("/api/v1/auth/me").json()
    assert me["user_id"] == "ada" and me["known_to_model"] is False

    client.cookies.clear()
    assert (
        client.post("/api/v1/auth/login", json={"username": "ada", "password": "wrong pass"}).status_code
        == 401
    )
    assert (
        client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x" * 9}).status_code == 401
    )
    login = client.post("/api/v1/auth/login", json={"username": "ada", "password": "correct horse 1"})
    assert login.status_code == 200 and login.json()["user_id"] == "ada"


def test_signup_refuses_taken_and_bad_names(client: TestClient) -> None:
    signup(client, "bob")
    client.cookies.clear()
    again = client.post("/api/v1/auth/signup", json={"username": "bob", "password": "another pass"})
    assert again.status_code == 409
    # A shopper the model knows cannot be claimed by signing up under its id.
    assert (
        client.post("/api/v1/auth/signup", json={"username": "u00", "password": "another pass"}).status_code
        == 409
    )
    for body in (
        {"username": "../x", "password": "long enough"},
        {"username": "ok_name", "password": "short"},
        {"username": "ok_name", "password": "long enough", "profile": {"interests": ["Nope"]}},
        {"username": "ok_name"},
    ):
        response = client.post("/api/v1/auth/signup", json=body)
        assert response.status_code == 422, body
        assert "long enough" not in response.text  # passwords are never echoed back


def test_shopper_reads_and_writes_only_own_data(client: TestClient) -> None:
    csrf = signup(client, "carol", interests=["Garden"])
    mine = client.get("/api/v1/recommendations", params={"k": 3})
    assert mine.status_code == 200 and mine.json()["user_id"] == "carol"
    assert mine.json()["strategy"] == "cold-start"
    assert client.get("/api/v1/recommendations", params={"user_id": "u00"}).status_code == 403
    assert client.get("/api/v1/users/u00").status_code == 403
    assert client.get("/api/v1/users/carol").status_code == 200
    other = client.post(
        "/api/v1/feedback",
        json={"user_id": "u00", "item_id": "i01", "event": "like"},
        headers={"X-CSRF-Token": csrf},
    )
    assert other.status_code == 403


def test_csrf_is_required_for_cookie_writes(client: TestClient) -> None:
    csrf = signup(client, "dave")
    body = {"user_id": "dave", "item_id": "i01", "event": "like"}
    assert client.post("/api/v1/feedback", json=body).status_code == 403
    assert client.post("/api/v1/feedback", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/v1/feedback", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.post("/api/v1/auth/logout").status_code == 403
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_api_key_scopes(client: TestClient) -> None:
    reader, writer = api_key(client, "read"), api_key(client, "feedback")
    like = {"user_id": "u00", "item_id": "i01", "event": "like"}
    assert client.get("/api/v1/recommendations", params={"user_id": "u00"}, headers=reader).status_code == 200
    assert client.post("/api/v1/feedback", json=like, headers=reader).status_code == 403
    assert client.post("/api/v1/feedback", json=like, headers=writer).status_code == 201
    assert client.get("/api/v1/users/u00", headers=writer).status_code == 403
    assert client.post("/api/v1/feedback", json=like).status_code == 401
    assert client.get("/api/v1/users/u00", headers={"X-API-Key": "erk_wrong"}).status_code == 401
    assert client.post("/api/v1/admin/reload", headers=writer).status_code == 403


def test_demo_mode_sign_in(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    users = client.get("/api/v1/auth/demo-users", params={"limit": 4}).json()["users"]
    assert len(users) == 4 and len({u["segment"] for u in users}) >= 2
    session = client.post("/api/v1/auth/demo", json={"user_id": "u03"})
    assert session.status_code == 200 and session.json()["known_to_model"] is True
    recs = client.get("/api/v1/recommendations", params={"k": 3}).json()
    assert recs["user_id"] == "u03" and recs["strategy"] == "personalized"
    assert client.post("/api/v1/auth/demo", json={"user_id": "ghost"}).status_code == 404
    # Password-less demo rows cannot log in with a password.
    assert (
        client.post("/api/v1/auth/login", json={"username": "u03", "password": "anything1"}).status_code
        == 401
    )

    off = settings.model_copy(update={"demo_mode": False, "workdir": tmp_path / "off"})
    with TestClient(create_app(off)) as plain:
        assert plain.post("/api/v1/auth/demo", json={"user_id": "u03"}).status_code == 404
        assert plain.get("/api/v1/auth/demo-users").status_code == 404


def test_login_is_rate_limited_per_ip(settings: Settings) -> None:
    strict = settings.model_copy(update={"rate_limit_auth_per_minute": 3})
    with TestClient(create_app(strict)) as client:
        codes = [
            client.post("/api/v1/auth/login", json={"username": "x", "password": "guess-123"}).status_code
            for _ in range(5)
        ]
        assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
        limited = client.post("/api/v1/auth/login", json={"username": "x", "password": "guess-123"})
        assert int(limited.headers["Retry-After"]) >= 1
