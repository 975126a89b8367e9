"""Reload swaps bundles atomically and refuses corrupt ones; health, readiness, metrics, static UI, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from tests.backend.conftest import api_key
from tests.support.toy_shop import make_toy_bundle


@pytest.fixture
def copied_root(tmp_path: Path, toy_bundles: Path) -> tuple[Path, str]:
    """A writable copy of the session's bundles root and the version LATEST names in it."""
    root = tmp_path / "bundles"
    shutil.copytree(toy_bundles, root)
    return root, (root / "LATEST").read_text().strip()


def test_reload_swaps_versions_and_refuses_corrupt(tmp_path: Path, copied_root: tuple[Path, str]) -> None:
    root, first = copied_root
    settings = Settings(workdir=tmp_path, bundle_dir=root)
    with TestClient(create_app(settings)) as client:
        admin = api_key(client, "admin", "read")
        recs = "/api/v1/recommendations"
        assert client.get(recs, params={"user_id": "u00"}, headers=admin).json()["model_version"] == first
        second = make_toy_bundle(root, seed=1).name  # LATEST now names the new version
        swapped = client.post("/api/v1/admin/reload", headers=admin)
        assert swapped.status_code == 200, swapped.text
        assert swapped.json() == {**swapped.json(), "model_version": second, "previous_version": first}
        assert client.get(recs, params={"user_id": "u00"}, headers=admin).json()["model_version"] == second
        assert f'explainrec_model_info{{version="{second}"}} 1.0' in client.get("/metrics").text

        # A copy of the first bundle with one flipped byte: refused, the second keeps serving.
        bad = root / "corrupt"
        shutil.copytree(root / first, bad)
        target = bad / "item_vectors.npy"
        target.chmod(0o644)
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
        refused = client.post("/api/v1/admin/reload", json={"version": "corrupt"}, headers=admin)
        assert refused.status_code == 422 and f"still serving {second}" in refused.json()["detail"]
        assert "sha256" in refused.json()["detail"]
        ready = client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["model_version"] == second
        assert "sha256" in ready["last_reload_error"]
        assert client.get(recs, params={"user_id": "u00"}, headers=admin).json()["model_version"] == second
        # Names only, never paths: a client cannot point the service at arbitrary folders.
        for version in ("../../etc", "/tmp", ".hidden", "missing"):
            response = client.post("/api/v1/admin/reload", json={"version": version}, headers=admin)
            assert response.status_code == 422, version
        back = client.post("/api/v1/admin/reload", json={"version": first}, headers=admin)
        assert back.json()["model_version"] == first


def test_starts_without_a_bundle_and_says_why(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(workdir=tmp_path))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "no bundle" in ready.json()["detail"]
        assert client.get("/healthz").json() == {"status": "ok"}
        items = client.get("/api/v1/items")
        assert items.status_code == 503 and "no model is being served" in items.json()["detail"]


def test_health_metrics_and_static_ui(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["database"] == "ok"
    client.post("/api/v1/recommendations/cold-start", json={"profile": {"interests": ["Books"]}, "k": 2})
    client.get("/api/v1/items/i01")
    metrics = client.get("/metrics").text
    assert 'route="/api/v1/items/{item_id}"' in metrics  # one series per route template, not per id
    assert 'explainrec_explanations_total{source="template"} 2.0' in metrics
    page = client.get("/")
    assert page.status_code == 200 and "static test page" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    api = client.get("/api/v1/items/i01")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert (
        "access-control-allow-origin"
        not in client.get("/api/v1/items", headers={"Origin": "https://evil.example"}).headers
    )


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    for path in ("/api/v1/nothing", "/no/such/page"):
        response = client.get(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not Found"}
    response = client.delete("/api/v1/items/i01")
    assert response.status_code == 405 and "detail" in response.json()


def test_a_wrong_method_on_an_api_path_is_a_405_naming_the_right_one(client: TestClient) -> None:
    # The shopper UI's file server at "/" must not answer for the API: it had made GET of a
    # POST-only route a 404 and given every 405 its own "Allow: GET, HEAD".
    for method, path, allowed in (
        ("GET", "/api/v1/feedback", "POST"),
        ("DELETE", "/api/v1/feedback", "POST"),
        ("PUT", "/api/v1/auth/login", "POST"),
        ("DELETE", "/api/v1/items/i01", "GET"),
        ("POST", "/healthz", "GET"),
    ):
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed and response.json() == {"detail": "Method Not Allowed"}
    assert client.get("/api/v1/no-such-route").json() == {"detail": "Not Found"}
    for method, path in (("POST", "/api/v1/feedback/"), ("GET", "/api/v1/items/")):
        response = client.request(method, path, follow_redirects=False)  # no redirect to follow
        assert response.status_code == 404 and "location" not in response.headers, path
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_the_frontend_serves_every_path_the_api_does_not_own(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>shop</title>", "utf-8")
    (site / "api.js").write_text("export {};", "utf-8")
    (site / "js" / "api.js").write_text("export {};", "utf-8")
    app = create_app(Settings(workdir=tmp_path / "work", frontend_dir=site))
    with TestClient(app) as client:
        for path in ("/", "/api.js", "/js/api.js"):  # "/api" starts their names, not a folder
            assert client.get(path).status_code == 200, path
        assert client.get("/api/v1/feedback").status_code == 405
        assert client.get("/healthz").json() == {"status": "ok"}


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/recommendations",
        "/api/v1/recommendations/cold-start",
        "/api/v1/items",
        "/api/v1/items/{item_id}",
        "/api/v1/items/{item_id}/similar",
        "/api/v1/feedback",
        "/api/v1/segments",
        "/api/v1/segments/{segment_id}",
        "/api/v1/users/{user_id}",
        "/api/v1/auth/signup",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/admin/reload",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
