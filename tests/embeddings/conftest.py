"""One toy bundle per test session; tests that modify files work on copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.bundle import Bundle
from tests.support.toy_shop import make_toy_bundle


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundles")
    make_toy_bundle(root)
    return root


@pytest.fixture(scope="session")
def toy_bundle(toy_root: Path) -> Bundle:
    return Bundle.load(toy_root)
