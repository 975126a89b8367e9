"""SqliteWriteLock: writers of different processes (here: separate lock objects, as each worker
process has its own) take turns, and the next one starts as soon as the last one is done."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from backend.db.writelock import SqliteWriteLock


def test_two_workers_locks_on_one_database_exclude_each_other(tmp_path: Path) -> None:
    database = str(tmp_path / "shop.db")
    worker_a, worker_b = SqliteWriteLock(database), SqliteWriteLock(database)
    order: list[str] = []
    b_waited = threading.Event()

    def write_on_b() -> None:
        with worker_b:
            order.append("b")
        b_waited.set()

    with worker_a:
        other = threading.Thread(target=write_on_b)
        other.start()
        time.sleep(0.2)
        assert not b_waited.is_set()  # B queues while A writes
        order.append("a")
    started = time.monotonic()
    assert b_waited.wait(5)
    assert time.monotonic() - started < 0.1  # handed over at once, no busy-handler sleep
    other.join()
    assert order == ["a", "b"]
    assert (tmp_path / "shop.db-writelock").is_file()


def test_an_in_memory_database_needs_only_the_mutex() -> None:
    lock = SqliteWriteLock(":memory:")
    with lock:
        pass
    with lock:  # released properly
        pass


def test_taken_now_never_waits_for_another_holder(tmp_path: Path) -> None:
    database = str(tmp_path / "shop.db")
    worker_a, worker_b = SqliteWriteLock(database), SqliteWriteLock(database)
    with worker_a:
        started = time.monotonic()
        with worker_b.taken_now() as taken:
            assert taken is False  # another process's lock: no wait, nothing held
        with worker_a.taken_now() as taken:
            assert taken is False  # this process's own writer (the mutex) counts too
        assert time.monotonic() - started < 0.1
    with worker_b.taken_now() as taken:
        assert taken is True
        with worker_a.taken_now() as other:
            assert other is False  # held now, by B
    with worker_a:  # B let go of both the mutex and the file lock
        pass
    memory = SqliteWriteLock(":memory:")
    for _ in range(2):
        with memory.taken_now() as taken:
            assert taken is True
