"""WAL checkpoints: the app's connections leave them to a background thread (no commit on the
request path copies the log back), and that thread keeps the log from growing."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from backend.app import create_app
from backend.db.checkpoint import WalCheckpointer
from backend.db.engine import SAFETY_AUTOCHECKPOINT_PAGES, make_engine, make_session_factory, upgrade_database
from backend.settings import Settings
from backend.store import FeedbackWrite, Store

SQLITE_DEFAULT_AUTOCHECKPOINT = 1000


def _wal_frames(database: Path) -> int:
    """Frames in the log file (its header, then a 24-byte header and a page per frame)."""
    page_size = sqlite3.connect(database).execute("PRAGMA page_size").fetchone()[0]
    wal = database.with_name(database.name + "-wal")
    return max(0, (wal.stat().st_size - 32) // (page_size + 24)) if wal.is_file() else 0


def _write_batches(engine: Engine, batches: int, first: int = 0) -> None:
    store = Store(make_session_factory(engine))
    for b in range(first, first + batches):
        writes = [FeedbackWrite(f"u{b}-{i}", f"i{i}", "view", None, None, f"k{b}-{i}") for i in range(20)]
        outcomes = store.add_feedback_batch_now(writes)
        assert outcomes is not None and all(created for _, created in outcomes)  # type: ignore[misc]


def test_the_apps_commits_do_not_checkpoint_at_sqlites_default(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    engine = make_engine(f"sqlite:///{database}", background_checkpoints=True)
    upgrade_database(engine)
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == SAFETY_AUTOCHECKPOINT_PAGES
    _write_batches(engine, 400)  # ~8 pages a commit on this small table: ~3 000 pages of log
    assert _wal_frames(database) > 1.5 * SQLITE_DEFAULT_AUTOCHECKPOINT  # no commit copied it back
    engine.dispose()


def test_an_engine_without_the_thread_keeps_sqlites_own_checkpoints(tmp_path: Path) -> None:
    database = tmp_path / "cli.db"
    engine = make_engine(f"sqlite:///{database}")  # the CLI's: nobody else would checkpoint
    upgrade_database(engine)
    _write_batches(engine, 400)
    assert _wal_frames(database) < 1.5 * SQLITE_DEFAULT_AUTOCHECKPOINT
    engine.dispose()


def test_the_thread_copies_the_log_back_and_the_next_write_starts_it_over(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    engine = make_engine(f"sqlite:///{database}", background_checkpoints=True)
    upgrade_database(engine)
    checkpointer = WalCheckpointer(str(database), interval_s=0.02)
    checkpointer.start()

    def after_the_writes() -> tuple[int, int, int] | None:
        """The result of a checkpoint that started after the writes so far."""
        deadline, wanted = time.monotonic() + 10, checkpointer.checkpoints + 2
        while checkpointer.checkpoints < wanted:
            assert time.monotonic() < deadline, "the thread ran no checkpoint"
            time.sleep(0.02)
        return checkpointer.last_result

    try:
        _write_batches(engine, 400)
        busy, logged, copied = after_the_writes() or (1, 0, 0)
        assert busy == 0 and logged == copied > 1.5 * SQLITE_DEFAULT_AUTOCHECKPOINT  # all copied back
        _write_batches(engine, 1, first=400)  # a fully copied log is started over from its beginning
        busy, logged, copied = after_the_writes() or (1, 0, 0)
        assert busy == 0 and logged == copied < 100
    finally:
        checkpointer.stop()
        engine.dispose()
    assert not checkpointer.running


def test_only_a_sqlite_file_gets_a_thread() -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "postgresql://u:p@127.0.0.1:5432/shop"):
        checkpointer = WalCheckpointer.for_url(url)
        checkpointer.start()
        assert checkpointer.database is None and not checkpointer.running
        checkpointer.stop()


def test_the_app_runs_the_thread_for_its_lifetime(tmp_path: Path, toy_bundles: Path) -> None:
    app = create_app(Settings(workdir=tmp_path, bundle_dir=toy_bundles))
    checkpointer: WalCheckpointer = app.state.checkpointer
    with TestClient(app):
        assert checkpointer.running
    assert not checkpointer.running
