"""Security properties of the running app: credentials on every write/admin route, shoppers kept
to their own data, secrets hashed at rest and absent from logs, cookie flags, CSRF, rate limits
per IP and per credential, closed CORS, security headers on HTML, and no pickle anywhere.

    pytest tests/reliability/test_security.py -q
"""

from __future__ import annotations

import ast
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.reliability.conftest import make_settings, mint_key

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Tr0ub4dor&3-very-secret"
LIKE = {"user_id": "u00", "item_id": "i01", "event": "like"}


def signup(client: TestClient, username: str) -> str:
    response = client.post("/api/v1/auth/signup", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["csrf_token"])


def database_bytes(client: TestClient) -> bytes:
    """Every byte the SQLite database holds, WAL included (fresh writes may sit only there)."""
    url = client.app.state.service.settings.resolved_database_url()  # type: ignore[attr-defined]
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.is_file())


# -- credentials on write and admin routes --

WRITE_ROUTES = [
    ("post", "/api/v1/feedback", LIKE, "feedback"),
    ("post", "/api/v1/admin/reload", {}, "admin"),
]
READ_ROUTES = [("get", "/api/v1/recommendations?user_id=u00", None), ("get", "/api/v1/users/u00", None)]


@pytest.mark.parametrize(("method", "path", "body", "scope"), WRITE_ROUTES)
def test_write_and_admin_routes_refuse_missing_wrong_and_underscoped_keys(
    client: TestClient, method: str, path: str, body: dict[str, object], scope: str
) -> None:
    send = getattr(client, method)
    assert send(path, json=body).status_code == 401
    for wrong in ("erk_" + "A" * 43, "", " ", "null", mint_key(client, "read")[:-1]):
        assert send(path, json=body, headers={"X-API-Key": wrong}).status_code == 401, wrong
    underscoped = [s for s in ("read", "feedback", "admin") if s != scope]
    response = send(path, json=body, headers={"X-API-Key": mint_key(client, *underscoped)})
    assert response.status_code == 403 and scope in response.json()["detail"]
    assert client.app.state.service.store.count_feedback() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(("method", "path", "body"), READ_ROUTES)
def test_personal_reads_need_credentials(client: TestClient, method: str, path: str, body: object) -> None:
    assert getattr(client, method)(path).status_code == 401
    assert getattr(client, method)(path, headers={"X-API-Key": "erk_wrong"}).status_code == 401


def test_a_revoked_key_stops_working(client: TestClient) -> None:
    key = mint_key(client, "read")
    assert client.get("/api/v1/users/u00", headers={"X-API-Key": key}).status_code == 200
    url = client.app.state.service.settings.resolved_database_url()  # type: ignore[attr-defined]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP")
    assert client.get("/api/v1/users/u00", headers={"X-API-Key": key}).status_code == 401


def test_shopper_cannot_read_or_write_another_shoppers_data(client: TestClient) -> None:
    csrf = signup(client, "mallory")
    signed_in = {"X-CSRF-Token": csrf}
    for path in ("/api/v1/recommendations?user_id=u01", "/api/v1/users/u01", "/api/v1/users/alice"):
        assert client.get(path).status_code in (403, 404), path
    for target in ("u01", "alice", "MALLORY", "mallory "):
        response = client.post("/api/v1/feedback", json={**LIKE, "user_id": target}, headers=signed_in)
        assert response.status_code in (403, 422), (target, response.text)
    assert client.post("/api/v1/admin/reload", json={}, headers=signed_in).status_code in (401, 403)
    # Another shopper's session cookie is what authenticates, never a user_id in the request.
    own = client.post("/api/v1/feedback", json={**LIKE, "user_id": "mallory"}, headers=signed_in)
    assert own.status_code == 201, own.text
    assert client.app.state.service.store.count_feedback() == 1  # type: ignore[attr-defined]


# -- secrets at rest and in logs --


def test_passwords_session_tokens_and_api_keys_are_stored_hashed(client: TestClient) -> None:
    signup(client, "hashcheck")
    session_token = client.cookies.get("explainrec_session")
    key = mint_key(client, "read", "admin")
    assert client.get("/api/v1/users/u00", headers={"X-API-Key": key}).status_code == 200
    stored = database_bytes(client)
    assert session_token and key
    for secret in (PASSWORD, session_token, key, key[4:]):
        assert secret.encode() not in stored, f"a secret is stored in the clear: {secret[:6]}..."
    url = client.app.state.service.settings.resolved_database_url()  # type: ignore[attr-defined]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        (password_hash,) = db.execute("SELECT password_hash FROM credentials").fetchone()
        key_hashes = [row[0] for row in db.execute("SELECT key_hash FROM api_keys")]
    assert password_hash.startswith(("$argon2id$", "$2b$")), password_hash[:10]
    assert all(len(h) >= 64 and key not in h for h in key_hashes)


def test_secrets_never_reach_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = mint_key(client, "read", "feedback", "admin")
    signup(client, "logcheck")
    client.cookies.clear()
    client.post("/api/v1/auth/login", json={"username": "logcheck", "password": PASSWORD + "x"})
    client.post("/api/v1/auth/login", json={"username": "logcheck", "password": PASSWORD})
    client.post("/api/v1/auth/signup", json={"username": "x", "password": PASSWORD})  # 422 path
    client.post("/api/v1/feedback", json=LIKE, headers={"X-API-Key": key})
    client.post("/api/v1/feedback", json=LIKE, headers={"X-API-Key": key + "-wrong"})
    client.post("/api/v1/admin/reload", json={"version": "../x"}, headers={"X-API-Key": key})
    session_token = client.cookies.get("explainrec_session") or "no-session"
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    assert caplog.records, "nothing was logged, so this test would prove nothing"
    for secret in (PASSWORD, key, session_token):
        assert secret not in logged, f"a secret appears in the logs: {secret[:6]}..."


def test_validation_errors_do_not_echo_passwords(client: TestClient) -> None:
    for body in (
        {"username": "ok_name", "password": PASSWORD * 10},
        {"username": "../bad", "password": PASSWORD},
        {"username": "ok_name", "password": PASSWORD, "extra": PASSWORD},
    ):
        response = client.post("/api/v1/auth/signup", json=body)
        assert response.status_code == 422 and PASSWORD not in response.text


# -- cookies and CSRF --


def test_session_cookie_is_httponly_and_samesite(client: TestClient) -> None:
    response = client.post("/api/v1/auth/signup", json={"username": "cookies", "password": PASSWORD})
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    session = cookies["explainrec_session"].lower()
    assert "httponly" in session and ("samesite=lax" in session or "samesite=strict" in session)
    assert "path=/" in session and "max-age=" in session
    assert response.headers.get("cache-control") == "no-store"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/feedback", {**LIKE, "user_id": "csrfer"}),
        ("/api/v1/auth/logout", None),
    ],
)
def test_cookie_authenticated_writes_need_the_csrf_token(
    client: TestClient, path: str, body: dict[str, object] | None
) -> None:
    csrf = signup(client, "csrfer")
    for headers in (
        {},
        {"X-CSRF-Token": ""},
        {"X-CSRF-Token": csrf[:-1] + "x"},
        {"X-CSRF-Token": csrf + csrf},
    ):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 403 and "CSRF" in response.json()["detail"], (headers, response.text)
    assert client.app.state.service.store.count_feedback() == 0  # type: ignore[attr-defined]
    assert client.get("/api/v1/auth/me").status_code == 200  # the session survived the forged logout
    assert client.post(path, json=body, headers={"X-CSRF-Token": csrf}).status_code in (201, 204)


def test_a_csrf_token_from_another_session_is_refused(client: TestClient) -> None:
    other_csrf = signup(client, "victim1")
    client.cookies.clear()
    signup(client, "attacker1")
    response = client.post(
        "/api/v1/feedback", json={**LIKE, "user_id": "attacker1"}, headers={"X-CSRF-Token": other_csrf}
    )
    assert response.status_code == 403


# -- rate limits --


@pytest.fixture
def tight_client(tmp_path: Path, toy_bundles: Path) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path, toy_bundles, rate_limit_auth_per_minute=3, rate_limit_feedback_per_minute=4
    )
    with TestClient(create_app(settings), client=("203.0.113.7", 5000)) as test_client:
        yield test_client


def start_of_a_fresh_window() -> None:
    """The limiter counts in fixed 60 s windows of the monotonic clock (backend/ratelimit.py); a
    test that straddles a window edge would see its count reset, so start well inside one."""
    into_window = time.monotonic() % 60
    if into_window > 45:
        time.sleep(60.5 - into_window)


def test_login_is_limited_per_ip(tight_client: TestClient) -> None:
    start_of_a_fresh_window()
    statuses = [
        tight_client.post(
            "/api/v1/auth/login", json={"username": "nobody", "password": "guess-" + str(n)}
        ).status_code
        for n in range(5)
    ]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429], statuses
    limited = tight_client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    assert int(limited.headers["Retry-After"]) >= 1 and "retry" in limited.json()["detail"]
    # Another address is counted separately.
    other = TestClient(tight_client.app, client=("198.51.100.9", 5000))
    assert other.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"}).status_code == 401


def test_feedback_is_limited_per_key_across_ips_and_per_ip_across_keys(tight_client: TestClient) -> None:
    start_of_a_fresh_window()
    key = {"X-API-Key": mint_key(tight_client, "read", "feedback")}
    statuses = []
    for n in range(6):  # one key, a new address each time: the per-key bucket must still fill
        roaming = TestClient(tight_client.app, client=(f"192.0.2.{n + 1}", 5000))
        statuses.append(roaming.post("/api/v1/feedback", json=LIKE, headers=key).status_code)
    assert statuses.count(201) == 4 and statuses[4:] == [429, 429], statuses
    statuses = []
    for _ in range(6):  # one address, a new key each time: the per-IP bucket must still fill
        fresh = {"X-API-Key": mint_key(tight_client, "read", "feedback")}
        statuses.append(tight_client.post("/api/v1/feedback", json=LIKE, headers=fresh).status_code)
    assert statuses.count(201) == 4 and statuses[4:] == [429, 429], statuses


# -- browser-facing headers --


def test_cors_is_closed_by_default(client: TestClient) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = client.options(
        "/api/v1/feedback",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = client.get("/api/v1/items", headers=origin)
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-credentials" not in simple.headers


def test_html_carries_security_headers(client: TestClient) -> None:
    page = client.get("/")
    if page.status_code == 404:
        pytest.skip("no web UI in this checkout (frontend/index.html)")
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp
    assert "script-src 'self'" in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    api = client.get("/api/v1/items")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["content-type"].startswith("application/json")  # hostile titles are never HTML here


# -- no pickle --

PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def pickle_uses(source: str, filename: str) -> list[str]:
    """Every place `source` may unpickle: pickle-family imports, torch.load without
    weights_only=True, numpy loads with allow_pickle=True, pandas read_pickle, unsafe yaml."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [
                f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"{where} from {node.module} import")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if name.endswith("torch.load") or (name == "load" and "weights_only" in kwargs):
                if kwargs.get("weights_only") != "True":
                    found.append(f"{where} {name} without weights_only=True")
            elif kwargs.get("allow_pickle") == "True":
                found.append(f"{where} {name}(allow_pickle=True)")
            elif name.endswith(("read_pickle", "yaml.unsafe_load", "yaml.full_load")):
                found.append(f"{where} {name}")
            elif name.endswith("yaml.load") and "SafeLoader" not in kwargs.get("Loader", ""):
                found.append(f"{where} {name} without SafeLoader")
    return found


def test_the_pickle_detector_catches_known_bad_code() -> None:
    bad = (
        "import pickle\nfrom joblib import load\nimport torch, numpy as np, pandas as pd, yaml\n"
        "torch.load('m.pt')\ntorch.load('m.pt', weights_only=False)\nnp.load('a.npy', allow_pickle=True)\n"
        "pd.read_pickle('x')\nyaml.load(open('c'))\n"
    )
    assert len(pickle_uses(bad, "bad.py")) == 7
    good = "import torch, numpy as np\ntorch.load('m.pt', weights_only=True)\nnp.load('a.npy')\n"
    assert pickle_uses(good, "good.py") == []


def test_no_pickle_loading_anywhere_in_the_source_tree() -> None:
    packages = ["backend", "embeddings", "explain", "training", "explainrec", "scripts", "tests/support"]
    files = [f for p in packages for f in sorted((REPO / p).rglob("*.py")) if ".venv" not in f.parts]
    assert len(files) > 30, files
    found = [use for f in files for use in pickle_uses(f.read_text("utf-8"), str(f.relative_to(REPO)))]
    assert not found, "pickle loading found:\n" + "\n".join(found)
