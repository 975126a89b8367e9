"""SQLite WAL checkpoints in a background thread, off the requests' path.

    checkpointer = WalCheckpointer.for_url(url)   # a no-op for PostgreSQL or an in-memory database
    checkpointer.start()                          # after migrations: the file exists
    ...
    checkpointer.stop()

In WAL mode SQLite copies the log back into the database file (a checkpoint, with its fsyncs)
inside whichever commit takes the log past 1 000 pages. The event loop writes feedback batches
itself (backend/feedbackwriter.py), so that commit held every request of the worker: ~7 ms, once
in ~45 commits under write load. The app's engine (`make_engine(url, background_checkpoints=True)`)
leaves checkpoints to this thread, which runs a PASSIVE one (it waits for no reader or writer;
SQLite runs it without the GIL) every `interval_s`; the connections still checkpoint by
themselves past `engine.SAFETY_AUTOCHECKPOINT_PAGES`, should this thread stop or fall behind.

SQLite starts the log over only when a write begins with all of it copied back. Under a
steady stream of writes that rarely happens between two commits, so the log then grows to the
safety net (~64 MB) and the commit that reaches it starts it over, having little left to copy:
one such commit per ~16 000 pages instead of one slow commit per 1 000.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from backend.db.engine import sqlite_file

log = logging.getLogger("explainrec.backend")

# A busy write load adds ~25 MB of log a second here: ~5 MB a checkpoint, as SQLite's default.
INTERVAL_S = 0.2


class WalCheckpointer:
    def __init__(self, database: str | None, interval_s: float = INTERVAL_S) -> None:
        self.database = database
        self.interval_s = interval_s
        self.checkpoints = 0  # PASSIVE checkpoints that ran
        # The last one's (busy, frames in the log, frames of it now in the database file); -1s
        # when another connection was checkpointing.
        self.last_result: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_url(cls, url: str, interval_s: float = INTERVAL_S) -> WalCheckpointer:
        return cls(sqlite_file(url), interval_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.database is None or self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        assert self.database is not None
        try:
            connection = sqlite3.connect(self.database, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("no background WAL checkpoints (SQLite checkpoints in commits): %s", exc)
            return
        failing = False
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    busy, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    if not failing:  # once per failing stretch, not five times a second
                        log.warning("background WAL checkpoint failed, retrying: %s", exc)
                    failing = True
                    continue
                failing = False
                self.checkpoints += 1
                self.last_result = (int(busy), int(logged), int(copied))
        finally:
            connection.close()
