"""In-process caches for the read path: API-key checks and shoppers' stored state.

    cache = HotCache(DatabaseWatch.for_url(url))
    seen = cache.sync()                          # cheap: a PRAGMA, plus one read after a commit
    record = cache.api_key(digest)               # MISS when absent or expired
    cache.put_api_key(digest, record, seen)      # ignored if a key changed meanwhile
    cache.put_shopper(shopper, seen)             # ignored if that shopper was dropped meanwhile
    cache.put_session(digest, record, seen)      # ignored if all sessions were dropped meanwhile
    cache.put_response(key, body, seen, user_id) # a whole GET response about that shopper

Why a database-wide signal and not per-user versions on the read path: SQLite's
`PRAGMA data_version` changes whenever any *other* connection (another worker process, this
process's pool, or a hand-run `sqlite3` revoking a key) commits. So every worker sees a write
made through any other worker on its next request, with one PRAGMA and no table read. Only
after it moves does the worker read what changed, in one statement: the `change_counters` rows
that triggers bump (`api_keys`, migration 0002; `state`: users, sessions, feedback edits and
deletes, migration 0003) and the highest feedback id.

- New feedback only (the common write): the shoppers with feedback rows above the last highest
  id are dropped, one indexed range read; every other cached shopper and session stays.
- The `state` counter moved (a profile, a session ended, feedback edited or deleted) or a
  counter is missing: every cached shopper and session is dropped.
- The `api_keys` counter moved: the key checks are dropped. Feedback traffic never sends
  requests back to the key table, and a revocation stops the key on every worker's next request.

Sessions (the signed-in shopper behind a cookie) are dropped with the shoppers at any change
but new feedback, so a cached session never outlives its row, and one that expires while cached
is refused at its `expires_at`.

Whole responses (backend/readcache.py) carry the shopper they are about and the sync their
reads followed; one is served only while nothing synced since dropped that shopper or everyone,
so new feedback from one shopper leaves every other shopper's stored lists in place.

Other databases (PostgreSQL) have no such counter, so there shoppers, sessions and responses
are not cached (replicas must see each other's writes) and an API-key check is reused for at
most `key_ttl_s` seconds: a revoked key stops working on every replica within that time.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final, Generic, NamedTuple, TypeVar

from backend.db.engine import sqlite_file
from backend.recommender import Shopper
from backend.store import ApiKeyRecord, SessionRecord, now


class Missing:
    pass


MISS: Final = Missing()
V = TypeVar("V")


class Versions(NamedTuple):
    """One reading of the database's change signals (SQLite)."""

    data: int  # data_version: moves at every commit by another connection
    keys: int | None  # the API-key change counter (migration 0002)
    state: int | None  # users, sessions, feedback edits and deletes (migration 0003)
    feedback: int | None  # the highest feedback id: new rows above it name the changed shoppers
    feedback_users: frozenset[str]  # users with feedback above the id the reader passed


class Seen(NamedTuple):
    """What one `HotCache.sync()` saw; tags the reads a request makes after it."""

    data: int | None  # SQLite data_version; None where unsupported
    keys: int | None  # the API-key change counter; None where unsupported
    epoch: int | None = None  # this cache's count of changes processed, when the sync returned


class _StoredResponse(NamedTuple):
    response: Any
    seen: Seen  # the sync before the reads behind it
    user_id: str  # the shopper it is about


class DatabaseWatch:
    """Reads SQLite's data_version on its own connection; `version()` is None when unsupported."""

    def __init__(self, sqlite_path: str | None) -> None:
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        if sqlite_path is not None:
            try:
                # Autocommit, so each PRAGMA sees the latest committed state rather than a snapshot.
                self._connection = sqlite3.connect(
                    sqlite_path, check_same_thread=False, isolation_level=None, timeout=15
                )
            except sqlite3.Error:
                self._connection = None  # caches then behave as for PostgreSQL

    @classmethod
    def for_url(cls, url: str) -> DatabaseWatch:
        return cls(sqlite_file(url))

    @property
    def supported(self) -> bool:
        return self._connection is not None

    # One statement, so the numbers (and the users with new feedback) describe one committed
    # state, and a commit costs each worker one query.
    _VERSIONS = (
        "SELECT (SELECT data_version FROM pragma_data_version()), value, "
        "(SELECT value FROM change_counters WHERE name = 'state'), "
        "(SELECT max(id) FROM feedback_events), "
        "(SELECT json_group_array(DISTINCT user_id) FROM feedback_events "
        " WHERE id > coalesce(?, (SELECT max(id) FROM feedback_events))) "
        "FROM change_counters WHERE name = 'api_keys'"
    )

    def data_version(self) -> int | None:
        """SQLite's data_version alone (no table read), or None when unsupported or unreadable."""
        if self._connection is None:
            return None
        try:
            with self._lock:
                return int(self._connection.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return None

    def versions(self, feedback_after: int | None = None) -> Versions | None:
        """What changed, as counters, and the users with feedback ids above `feedback_after`
        (none when it is None); None when unsupported or unreadable.

        Counters are None on a database without them (not migrated to 0002 / 0003): callers
        then treat every change as a possible change of that kind."""
        if self._connection is None:
            return None
        try:
            with self._lock:
                row = self._connection.execute(self._VERSIONS, (feedback_after,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                return None  # unreadable right now: callers then treat every entry as unverified
            row = None
        except sqlite3.Error:
            return None
        if row is None:  # no counter table or row: data_version alone
            data = self.data_version()
            return None if data is None else Versions(data, None, None, None, frozenset())
        data, keys, state, feedback, users = row
        return Versions(
            int(data),
            None if keys is None else int(keys),
            None if state is None else int(state),
            None if feedback is None else int(feedback),
            frozenset(str(u) for u in json.loads(users or "[]")),
        )

    def close(self) -> None:
        if self._connection is not None:
            with self._lock:
                self._connection.close()
                self._connection = None


class Lru(Generic[V]):
    """Least recently used entries with an expiry; bounded by count and, given `weigh`, by the
    total weight of the values (bytes, for responses)."""

    def __init__(
        self, size: int, max_weight: int | None = None, weigh: Callable[[V], int] | None = None
    ) -> None:
        self._size = size
        self._max_weight = max_weight
        self._weigh = weigh
        self._weight = 0
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable, now: float) -> V | Missing:
        hit = self._entries.get(key)
        if hit is None:
            return MISS
        if hit[0] < now:
            self.pop(key)
            return MISS
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, value: V, expires: float) -> None:
        self.pop(key)
        weight = self._weigh(value) if self._weigh is not None else 0
        if self._max_weight is not None and weight > self._max_weight:
            return  # would evict everything and still not fit
        self._entries[key] = (expires, value)
        self._weight += weight
        while len(self._entries) > self._size or (
            self._max_weight is not None and self._weight > self._max_weight and self._entries
        ):
            self.pop(next(iter(self._entries)))

    def pop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and self._weigh is not None:
            self._weight -= self._weigh(entry[1])

    def clear(self) -> None:
        self._entries.clear()
        self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def weight(self) -> int:
        return self._weight


def _response_weight(stored: _StoredResponse) -> int:
    return len(getattr(stored.response, "body", b"")) + 256  # + headers and bookkeeping, roughly


class HotCache:
    def __init__(
        self,
        watch: DatabaseWatch,
        key_ttl_s: float = 30.0,
        shopper_ttl_s: float = 300.0,
        size: int = 50_000,
        response_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.watch = watch
        self.key_ttl_s = key_ttl_s
        self.shopper_ttl_s = shopper_ttl_s
        self._keys: Lru[tuple[str, ApiKeyRecord | None]] = Lru(size)
        self._shoppers: Lru[Shopper] = Lru(size)
        self._sessions: Lru[tuple[str, SessionRecord]] = Lru(size)
        # Bounded by bytes (a top-10 body is ~1.5 KB, a top-100 with explanations ~40 KB).
        self._responses: Lru[_StoredResponse] = Lru(size, response_bytes, _response_weight)
        self._version: int | None = None
        self._keys_epoch: int | None = None
        self._state_epoch: int | None = None
        self._feedback_high: int | None = None
        # Changes processed so far; when shoppers and sessions were last all dropped; when each
        # shopper was last dropped alone. A read tagged with an older epoch may still be stored
        # if neither drop came after it: a busy write stream does not keep everyone uncached.
        self._epoch = 0
        self._cleared_at = 0
        self._dropped_at: dict[str, int] = {}
        self._size = size
        self._lock = threading.Lock()

    def sync(self) -> Seen:
        """Empty what may be stale since the last call; returns what it saw, to tag the reads
        made after it (pass it to the put_* methods)."""
        data = self.watch.data_version()
        with self._lock:
            if data is not None and data == self._version:
                # Nothing committed since the last full read, so the key counter has not moved.
                return Seen(data, self._keys_epoch, self._epoch)
            state_epoch, feedback_high = self._state_epoch, self._feedback_high
        versions = self.watch.versions(feedback_after=feedback_high)
        seen = Seen(versions.data, versions.keys) if versions is not None else Seen(None, None)
        # Only new feedback since the last reading: drop just the shoppers it names.
        only_feedback = (
            versions is not None
            and versions.state is not None
            and versions.state == state_epoch
            and feedback_high is not None
        )
        changed = versions.feedback_users if versions is not None and only_feedback else None
        with self._lock:
            if seen.data is None or seen.data != self._version:
                self._epoch += 1
                if changed is not None and len(self._dropped_at) + len(changed) <= self._size:
                    for user_id in changed:
                        self._shoppers.pop(user_id)
                        self._dropped_at[user_id] = self._epoch
                else:
                    self._shoppers.clear()
                    self._sessions.clear()
                    self._dropped_at.clear()
                    self._cleared_at = self._epoch
                    self._responses.clear()
                # Otherwise stored responses are checked when read (`response`): dropping them
                # here would mean an index by shopper to keep in step with the LRU.
                if seen.keys is None or seen.keys != self._keys_epoch:
                    self._keys.clear()
                self._version, self._keys_epoch = seen.data, seen.keys
                self._state_epoch = versions.state if versions is not None else None
                # No feedback yet: everything above id 0 will be new (ids start at 1).
                self._feedback_high = (versions.feedback or 0) if versions is not None else None
            seen = seen._replace(epoch=self._epoch)
        return seen

    def _unchanged_since(self, seen: Seen, user_id: str | None) -> bool:
        """Whether nothing synced after `seen` dropped this shopper (None: any shopper) or
        everyone. Call with the lock held."""
        if seen.data is not None and seen.data == self._version:
            return True
        if seen.epoch is None or self._cleared_at > seen.epoch:
            return False
        return user_id is None or self._dropped_at.get(user_id, -1) <= seen.epoch

    # -- API keys, keyed by the sha256 digest of the secret --
    def api_key(self, digest: str) -> ApiKeyRecord | Missing | None:
        with self._lock:
            hit = self._keys.get(digest, time.monotonic())
        if isinstance(hit, Missing):
            return MISS
        stored_digest, record = hit
        # The dict lookup found the entry by hash; this keeps the final comparison constant-time.
        return record if hmac.compare_digest(stored_digest, digest) else MISS

    def put_api_key(self, digest: str, record: ApiKeyRecord | None, seen: Seen) -> None:
        with self._lock:
            # With the key counter, only a key change since `seen` makes the read stale; a key
            # change the cache has not synced yet empties it at the next sync anyway.
            fresh = seen.keys == self._keys_epoch if seen.keys is not None else seen.data == self._version
            if fresh:
                self._keys.put(digest, (digest, record), time.monotonic() + self.key_ttl_s)

    def forget_api_keys(self) -> None:
        with self._lock:
            self._keys.clear()

    # -- signed-in sessions, keyed by the sha256 digest of the cookie; dropped with the shoppers --
    def session(self, digest: str) -> SessionRecord | Missing:
        """The session behind a cookie, read since the last change to users or sessions and not
        expired; else MISS."""
        if not self.watch.supported:
            return MISS
        with self._lock:
            hit = self._sessions.get(digest, time.monotonic())
        if isinstance(hit, Missing):
            return MISS
        stored_digest, record = hit
        if not hmac.compare_digest(stored_digest, digest) or record.expires_at <= now():
            return MISS
        return record

    def put_session(self, digest: str, record: SessionRecord, seen: Seen) -> None:
        if seen.data is None:
            return
        with self._lock:
            if self._unchanged_since(seen, None):
                self._sessions.put(digest, (digest, record), time.monotonic() + self.shopper_ttl_s)

    # -- shoppers (stored profile + recent feedback); only where the watch works --
    def shopper(self, user_id: str) -> Shopper | Missing:
        if not self.watch.supported:
            return MISS
        with self._lock:
            return self._shoppers.get(user_id, time.monotonic())

    def put_shopper(self, shopper: Shopper, seen: Seen) -> None:
        if seen.data is None or shopper.user_id is None:
            return
        with self._lock:
            if self._unchanged_since(seen, shopper.user_id):
                self._shoppers.put(shopper.user_id, shopper, time.monotonic() + self.shopper_ttl_s)

    def forget_shopper(self, user_id: str) -> None:
        """Drop the shopper's state at once (their own write): the next sync drops their stored
        responses too, and every read of a response syncs first (backend/readcache.py)."""
        with self._lock:
            self._shoppers.pop(user_id)

    # -- whole responses (backend/readcache.py); only where the watch works --
    def response(self, key: Hashable) -> Any:
        """The stored response, or MISS; MISS too when its shopper (or everyone) was dropped since
        its reads. Call after `sync()`, so that commits by others have been seen."""
        if not self.watch.supported:
            return MISS
        with self._lock:
            hit = self._responses.get(key, time.monotonic())
            if isinstance(hit, Missing):
                return MISS
            if not self._unchanged_since(hit.seen, hit.user_id):
                self._responses.pop(key)
                return MISS
            return hit.response

    def put_response(self, key: Hashable, response: Any, seen: Seen, user_id: str) -> None:
        """Store a response about shopper `user_id` computed from reads made after `seen`."""
        if seen.data is None:
            return
        with self._lock:
            if self._unchanged_since(seen, user_id):
                self._responses.put(
                    key, _StoredResponse(response, seen, user_id), time.monotonic() + self.shopper_ttl_s
                )
