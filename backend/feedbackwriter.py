"""Group commit for feedback: concurrent writes share one transaction.

    writer = FeedbackWriter(lambda: state.store)   # the store as of each batch
    record, created = await writer.add(FeedbackWrite("u1", "i9", "like", None, None, None))

A commit is the expensive part of a feedback write, and SQLite takes one writer at a time. So
requests queue their event on the event loop; one task takes everything queued, stores it in
one transaction (one commit) and answers each request with its own outcome. While a batch is
being written the next one gathers, so the batch grows with the load and a lone request still
commits at once. A request is answered only after its commit; a database error fails the
requests of that batch (each gets the error, none of the batch is stored) and the next batch
tries again.

Where the batch is written: on the event loop itself when SQLite's write lock is free at that
moment (`Store.add_feedback_batch_now`, on the loop's own sqlite3 connection:
backend/db/loopconnection.py), else in a worker thread that may wait its turn
(`Store.add_feedback_batch`; always so for PostgreSQL). A SQLite batch is well under 1 ms of
work, most of it holding the GIL: in a thread it ran no sooner, and each of its hand-offs of the
GIL to the busy loop and back added a wait (docs/benchmarks.md, round ten: 5 ms less wait a write).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from backend.store import FeedbackRecord, FeedbackWrite, IdempotencyConflictError, Store

MAX_BATCH = 256  # bounds one transaction's length, so the first request of a batch waits little


Outcome = tuple[FeedbackRecord, bool] | IdempotencyConflictError
R = TypeVar("R")


@dataclass
class _Pending:
    write: FeedbackWrite
    answer: asyncio.Future[tuple[FeedbackRecord, bool]]


class FeedbackWriter:
    def __init__(
        self,
        store: Callable[[], Store],
        max_batch: int = MAX_BATCH,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        # Called with each committed batch's size and the seconds its store call took (metrics).
        self.on_commit = on_commit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and the benchmark's curiosity
        self.writes = 0

    async def add(self, write: FeedbackWrite) -> tuple[FeedbackRecord, bool]:
        """Store one event, committed together with whatever else is waiting; (record, created) or
        IdempotencyConflictError, as `Store.add_feedback`."""
        queue = self._queue_for(asyncio.get_running_loop())
        pending = _Pending(write, asyncio.get_running_loop().create_future())
        queue.put_nowait(pending)
        return await pending.answer

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _queue_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Pending]:
        # One writer task per event loop (a test client may run each request on a fresh loop).
        if self._loop is not loop or self._queue is None or self._task is None or self._task.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run(self._queue), name="feedback-group-commit")
        return self._queue

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        store, writes = self.store(), [p.write for p in batch]
        try:
            written_now, seconds = _timed(store.add_feedback_batch_now, writes)
            if written_now is not None:
                outcomes = written_now
            else:
                outcomes, seconds = await run_in_threadpool(_timed, store.add_feedback_batch, writes)
        except asyncio.CancelledError:
            for pending in batch:
                if not pending.answer.done():
                    pending.answer.cancel()
            raise
        except Exception as exc:  # the database's error reaches each request (503 via the handlers)
            for pending in batch:
                if not pending.answer.done():
                    pending.answer.set_exception(exc)
            return
        self.batches += 1
        self.writes += len(batch)
        if self.on_commit is not None:
            self.on_commit(len(batch), seconds)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.answer.done():  # the client went away; its row is stored all the same
                continue
            if isinstance(outcome, IdempotencyConflictError):
                pending.answer.set_exception(outcome)
            else:
                pending.answer.set_result(outcome)


def _timed(store_batch: Callable[[list[FeedbackWrite]], R], writes: list[FeedbackWrite]) -> tuple[R, float]:
    """A store call's result and how long it took (the commit metric)."""
    started = time.perf_counter()
    outcomes = store_batch(writes)
    return outcomes, time.perf_counter() - started
