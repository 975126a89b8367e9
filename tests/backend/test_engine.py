"""Database URLs: which SQLite file the app's own connections open, and engines for each form."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.db import engine as engine_module
from backend.db.checkpoint import WalCheckpointer
from backend.db.engine import make_engine, sqlite_file, upgrade_database
from backend.hotcache import DatabaseWatch
from backend.settings import Settings
from explainrec.errors import ConfigError
from tests.backend.conftest import api_key


def test_the_file_of_each_sqlite_url_form(tmp_path: Path) -> None:
    db = tmp_path / "shop db.sqlite"
    assert sqlite_file(f"sqlite:///{db}") == str(db)
    assert sqlite_file("sqlite:///relative.db") == "relative.db"
    # SQLite's URI filenames (SQLAlchemy passes them through with uri=true)
    assert sqlite_file(f"sqlite:///file:{db}?uri=true") == str(db)
    assert sqlite_file("sqlite:///file:relative.db?uri=true&mode=rwc") == "relative.db"
    assert sqlite_file(f"sqlite:///file://{tmp_path}/shop%20db.sqlite?uri=true") == str(db)
    assert sqlite_file(f"sqlite:///file://localhost{tmp_path}/x.db?uri=true") == f"{tmp_path}/x.db"
    for no_file in (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:shop?mode=memory&cache=shared&uri=true",
        "sqlite:///file::memory:?uri=true",
        "postgresql://u:p@127.0.0.1:5432/shop",
    ):
        assert sqlite_file(no_file) is None, no_file
    with pytest.raises(ConfigError, match="not on 'elsewhere'"):
        sqlite_file("sqlite:///file://elsewhere/x.db?uri=true")
    # without uri=true, `file:x.db` is an ordinary (odd) file name, as sqlite3 itself reads it
    assert sqlite_file("sqlite:///file:x.db") == "file:x.db"


def test_an_in_memory_uri_database_gets_an_engine_that_works() -> None:
    engine = make_engine("sqlite:///file:explainrec-test?mode=memory&cache=shared&uri=true")
    try:
        upgrade_database(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM feedback_events").scalar() == 0
    finally:
        engine.dispose()


def test_the_app_on_a_uri_url_checkpoints_and_watches_the_file_it_writes(
    tmp_path: Path, toy_bundles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a stray file named after the URI would land here
    db = tmp_path / "data" / "shop.db"
    url = f"sqlite:///file:{db}?uri=true"
    app = create_app(Settings(workdir=tmp_path, bundle_dir=toy_bundles, database_url=url))
    with TestClient(app) as client:
        checkpointer: WalCheckpointer = app.state.checkpointer
        assert checkpointer.database == str(db) and checkpointer.running
        watch = DatabaseWatch.for_url(url)  # once the app has made the file
        before = watch.data_version()
        headers = api_key(client, "feedback")
        like = {"user_id": "u00", "item_id": "i14", "event": "like"}
        written = client.post("/api/v1/feedback", json=like, headers=headers)
        assert written.status_code == 201, written.text
        # the watch reads the database the service wrote: its commits move data_version
        assert before is not None and watch.data_version() != before
    watch.close()
    assert db.is_file()
    assert not [name for name in os.listdir(tmp_path) if name.startswith("file:")]


@pytest.mark.parametrize("limit", [256 * 1024, -1])
def test_the_wal_file_is_cut_back_once_a_pinned_log_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(engine_module, "WAL_SIZE_LIMIT_BYTES", limit)  # -1: SQLite's default, no limit
    db = tmp_path / "grow.db"
    engine = make_engine(f"sqlite:///{db}")
    wal = Path(f"{db}-wal")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE blobs (b BLOB)")
        with engine.connect() as reader, engine.connect() as writer:
            reader.exec_driver_sql("BEGIN")
            reader.exec_driver_sql("SELECT count(*) FROM blobs").scalar()  # pins the log
            for _ in range(30):
                writer.exec_driver_sql(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) "
                    "INSERT INTO blobs SELECT randomblob(4000) FROM n"
                )
                writer.commit()
            reader.rollback()
            grown = wal.stat().st_size
            assert grown > 2 * 1024 * 1024  # ~600 pages the reader kept from being copied back
            writer.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            writer.exec_driver_sql("INSERT INTO blobs VALUES (x'00')")  # starts the log over
            writer.commit()
        if limit < 0:
            assert wal.stat().st_size == grown
        else:
            assert wal.stat().st_size <= limit
    finally:
        engine.dispose()
