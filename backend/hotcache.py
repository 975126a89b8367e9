"""In-process caches for the read path: API-key checks and shoppers' stored state.

    cache = HotCache(DatabaseWatch.for_url(url))
    version = cache.sync()                       # cheap: no table is read
    record = cache.api_key(digest)               # MISS when absent or expired
    cache.put_api_key(digest, record, version)   # ignored if the database changed meanwhile

Why a database-wide change counter and not per-user versions: SQLite's `PRAGMA data_version`
changes whenever any *other* connection (another worker process, this process's pool, or a
hand-run `sqlite3` revoking a key) commits, and reading it touches no table. So every worker
sees a write made through any other worker on its next request, without a query on the read
path. The price is coarse invalidation: any commit empties this process's caches, which is cheap
to refill (one indexed read per user) and leaves read-mostly traffic entirely off the database.

Other databases (PostgreSQL) have no such counter, so there shoppers are not cached (replicas
must see each other's writes) and an API-key check is reused for at most `key_ttl_s` seconds:
a revoked key stops working on every replica within that time.
"""

from __future__ import annotations

import hmac
import sqlite3
import threading
import time
from collections import OrderedDict
from typing import Final, Generic, TypeVar

from sqlalchemy.engine import make_url

from backend.recommender import Shopper
from backend.store import ApiKeyRecord


class Missing:
    pass


MISS: Final = Missing()
V = TypeVar("V")


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
        parsed = make_url(url)
        path = parsed.database
        in_memory = not path or path == ":memory:" or "mode=memory" in path
        if parsed.get_backend_name() == "sqlite" and not in_memory:
            return cls(path)
        return cls(None)

    @property
    def supported(self) -> bool:
        return self._connection is not None

    def version(self) -> int | None:
        if self._connection is None:
            return None
        try:
            with self._lock:
                row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None  # unreadable right now: callers then treat every entry as unverified
        return int(row[0])

    def close(self) -> None:
        if self._connection is not None:
            with self._lock:
                self._connection.close()
                self._connection = None


class _Lru(Generic[V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str, now: float) -> V | Missing:
        hit = self._entries.get(key)
        if hit is None:
            return MISS
        if hit[0] < now:
            del self._entries[key]
            return MISS
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: str, value: V, expires: float) -> None:
        self._entries[key] = (expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class HotCache:
    def __init__(
        self, watch: DatabaseWatch, key_ttl_s: float = 30.0, shopper_ttl_s: float = 300.0, size: int = 50_000
    ) -> None:
        self.watch = watch
        self.key_ttl_s = key_ttl_s
        self.shopper_ttl_s = shopper_ttl_s
        self._keys: _Lru[tuple[str, ApiKeyRecord | None]] = _Lru(size)
        self._shoppers: _Lru[Shopper] = _Lru(size)
        self._version: int | None = None
        self._lock = threading.Lock()

    def sync(self) -> int | None:
        """Empty the caches if the database changed since the last call; returns the version to tag
        fresh reads with (pass it to the put_* methods)."""
        version = self.watch.version()
        with self._lock:
            if version is None or version != self._version:
                self._keys.clear()
                self._shoppers.clear()
                self._version = version
        return version

    # -- API keys, keyed by the sha256 digest of the secret --
    def api_key(self, digest: str) -> ApiKeyRecord | Missing | None:
        with self._lock:
            hit = self._keys.get(digest, time.monotonic())
        if isinstance(hit, Missing):
            return MISS
        stored_digest, record = hit
        # The dict lookup found the entry by hash; this keeps the final comparison constant-time.
        return record if hmac.compare_digest(stored_digest, digest) else MISS

    def put_api_key(self, digest: str, record: ApiKeyRecord | None, version: int | None) -> None:
        with self._lock:
            if version == self._version:
                self._keys.put(digest, (digest, record), time.monotonic() + self.key_ttl_s)

    def forget_api_keys(self) -> None:
        with self._lock:
            self._keys.clear()

    # -- shoppers (stored profile + recent feedback); only where the watch works --
    def shopper(self, user_id: str) -> Shopper | Missing:
        if not self.watch.supported:
            return MISS
        with self._lock:
            return self._shoppers.get(user_id, time.monotonic())

    def put_shopper(self, shopper: Shopper, version: int | None) -> None:
        if version is None or shopper.user_id is None:
            return
        with self._lock:
            if version == self._version:
                self._shoppers.put(shopper.user_id, shopper, time.monotonic() + self.shopper_ttl_s)

    def forget_shopper(self, user_id: str) -> None:
        with self._lock:
            self._shoppers.pop(user_id)
