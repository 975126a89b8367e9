"""Fixtures for the service tests: a real toy bundle, an app on a fresh SQLite file, API keys,
and a throwaway PostgreSQL 15 server for the storage tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from tests.support.toy_shop import make_toy_bundle

PG_BIN = Path(os.environ.get("EXPLAINREC_PG_BIN", "/usr/lib/postgresql/15/bin"))


@pytest.fixture(scope="session")
def toy_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundles root holding one toy bundle (LATEST points at it). Never modified by tests."""
    root = tmp_path_factory.mktemp("bundles")
    make_toy_bundle(root, seed=0)
    return root


@pytest.fixture
def settings(tmp_path: Path, toy_bundles: Path) -> Settings:
    return Settings(
        workdir=tmp_path,
        bundle_dir=toy_bundles,
        demo_mode=True,
        frontend_dir=Path(__file__).parent / "static_site",
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def api_key(client: TestClient, *scopes: str) -> dict[str, str]:
    key, _ = client.app.state.service.store.create_api_key("test", list(scopes))  # type: ignore[attr-defined]
    return {"X-API-Key": key}


@pytest.fixture
def admin_headers(client: TestClient) -> dict[str, str]:
    return api_key(client, "read", "feedback", "admin")


@pytest.fixture
def read_headers(client: TestClient) -> dict[str, str]:
    return api_key(client, "read")


def signup(client: TestClient, username: str, **profile: object) -> str:
    """Sign up through the API; returns the CSRF token (the session cookie stays in the client)."""
    response = client.post(
        "/api/v1/auth/signup", json={"username": username, "password": "correct horse 1", "profile": profile}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["csrf_token"]
    return token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL 15 server in a temp dir on a loopback port, removed afterwards."""
    if not (PG_BIN / "initdb").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    data_root = Path(tempfile.mkdtemp(prefix="explainrec-pg-"))
    as_root = os.geteuid() == 0
    prefix: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:  # initdb refuses to run as root; the postgres account owns the cluster instead
        shutil.chown(data_root, "postgres")
    data, port = data_root / "data", _free_port()
    subprocess.run(
        [
            *prefix,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data_root / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {data_root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            ).returncode
            != 0
        ):
            if time.monotonic() > deadline:
                pytest.fail("PostgreSQL did not become ready in 30 s: " + (data_root / "log").read_text())
            time.sleep(0.2)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(data_root, ignore_errors=True)
