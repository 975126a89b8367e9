"""One SQLite writer at a time, handed over without sleeping.

SQLite lets one connection write at a time; the others retry through its busy handler, which
sleeps 1, 2, 5, ... up to 100 ms between tries. Under a steady stream of feedback commits from
two uvicorn workers those sleeps were the p99. `SqliteWriteLock` queues this process's threads
on a mutex and the processes on an advisory `flock` of a file beside the database: the kernel
wakes the next writer as soon as the last one is done. Writers that do not take it (the CLI,
a hand-run sqlite3) still meet the busy handler, so correctness never depends on it.

`taken_now()` takes the lock only if nobody holds it at this moment: the event loop writes a
feedback batch itself when it would not wait (backend/feedbackwriter.py), and hands it to a
thread that may wait otherwise.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from backend.db.engine import in_memory_sqlite

try:
    import fcntl
except ImportError:  # not on Windows: the mutex alone, processes meet the busy handler
    fcntl = None  # type: ignore[assignment]


class SqliteWriteLock:
    def __init__(self, database: str | None) -> None:
        self._mutex = threading.Lock()
        self._path = None if in_memory_sqlite(database) or fcntl is None else Path(f"{database}-writelock")
        self._fd: int | None = None
        self._holding_file = False

    def __enter__(self) -> None:
        self._mutex.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._holding_file = True
        except OSError:  # e.g. a read-only folder: the busy handler still serialises writers
            self._holding_file = False

    @contextlib.contextmanager
    def taken_now(self) -> Iterator[bool]:
        """Holds the lock for the block if it is free now, without waiting; yields whether it
        was taken (False: another thread or process is writing, nothing is held)."""
        if not self._mutex.acquire(blocking=False):
            yield False
            return
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._holding_file = True
        except BlockingIOError:  # another process holds the file lock
            self._mutex.release()
            yield False
            return
        except OSError:  # e.g. a read-only folder: as __enter__, the busy handler still serialises
            self._holding_file = False
        try:
            yield True
        finally:
            self.__exit__(None, None, None)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if self._holding_file and self._fd is not None:
                self._holding_file = False
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _file(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd
