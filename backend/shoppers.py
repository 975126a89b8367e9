"""Assemble a `Shopper` from the database (profile, feedback) for the Recommender.

If the database is unreachable, recommendations still come from the bundle alone: the
shopper is built without stored feedback rather than failing the read.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from backend.recommender import Feedback, Shopper
from backend.store import Store, UserRecord

log = logging.getLogger("explainrec.backend")
FEEDBACK_WINDOW = 500


def load_shopper(store: Store, user_id: str) -> tuple[Shopper, UserRecord | None, bool]:
    """(shopper, stored user or None, whether the database answered)."""
    try:
        user = store.get_user(user_id)
        events = store.feedback_for(user_id, limit=FEEDBACK_WINDOW)
    except (DBAPIError, PoolTimeoutError) as exc:
        log.warning(
            "database unavailable, recommending for %s from the bundle only: %s", user_id, type(exc).__name__
        )
        return Shopper(user_id), None, False
    feedback = [Feedback(e.id, e.item_id, e.event, e.value, e.timestamp) for e in events]
    if user is None:
        return Shopper(user_id, feedback=feedback), None, True
    return Shopper(user_id, user.profile(), user.interests, feedback), user, True
