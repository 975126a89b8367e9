"""Assemble a `Shopper` from the database (profile, feedback) for the Recommender.

If the database is unreachable, recommendations still come from the bundle alone: the
shopper is built without stored feedback rather than failing the read. `cached_shopper` serves
the recommendation route from the in-process cache (backend/hotcache.py) when it can.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from backend.hotcache import HotCache, Missing, Seen
from backend.recommender import Feedback, Shopper
from backend.store import Store, UserRecord

log = logging.getLogger("explainrec.backend")
FEEDBACK_WINDOW = 500


def load_shopper(store: Store, user_id: str) -> tuple[Shopper, UserRecord | None, bool]:
    """(shopper, stored user or None, whether the database answered)."""
    try:
        user, events = store.user_and_feedback(user_id, limit=FEEDBACK_WINDOW)
    except (DBAPIError, PoolTimeoutError) as exc:
        log.warning(
            "database unavailable, recommending for %s from the bundle only: %s", user_id, type(exc).__name__
        )
        return Shopper(user_id), None, False
    feedback = [Feedback(e.id, e.item_id, e.event, e.value, e.timestamp) for e in events]
    if user is None:
        return Shopper(user_id, feedback=feedback), None, True
    return Shopper(user_id, user.profile(), user.interests, feedback), user, True


async def cached_shopper(cache: HotCache, store: Store, user_id: str, seen: Seen) -> Shopper:
    """The shopper from the cache when the database has not changed since it was read; otherwise
    read (in a worker thread unless the database is SQLite, see `Store.reads_inline`) and cached.
    `seen` is this request's `cache.sync()` (done once per request by the auth dependency)."""
    hit = cache.shopper(user_id)
    if not isinstance(hit, Missing):
        return hit
    if store.reads_inline:
        shopper, _, answered = load_shopper(store, user_id)
    else:
        shopper, _, answered = await run_in_threadpool(load_shopper, store, user_id)
    if answered:
        cache.put_shopper(shopper, seen)
    return shopper
