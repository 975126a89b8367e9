"""Fixtures for the reliability tests: one real toy bundle per session, an in-process app on a
fresh SQLite file per test, and API keys minted through the service's own store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from tests.support.toy_shop import make_toy_bundle


@pytest.fixture(scope="session")
def toy_bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundles root holding one toy bundle (LATEST points at it); tests must not modify it."""
    root = tmp_path_factory.mktemp("reliability-bundles")
    make_toy_bundle(root, seed=0)
    return root


def make_settings(workdir: Path, bundles: Path, **overrides: object) -> Settings:
    return Settings(workdir=workdir, bundle_dir=bundles, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path, toy_bundles: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, toy_bundles))) as test_client:
        yield test_client


def mint_key(client: TestClient, *scopes: str) -> str:
    """A real API key, created the way `explainrec apikey create` does (stored hashed)."""
    key, _ = client.app.state.service.store.create_api_key("reliability", list(scopes))  # type: ignore[attr-defined]
    return str(key)
