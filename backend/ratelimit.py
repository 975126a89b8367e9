"""Fixed-window rate limits kept in process memory.

Each replica counts on its own (N replicas allow up to N times the limit): good enough to stop
password guessing and runaway clients without a shared store.
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window number, hits)
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count one request; None when allowed, else seconds until the window resets."""
        now = time.monotonic()
        window = int(now // self.window_s)
        with self._lock:
            if len(self._counts) > 100_000:  # drop old windows instead of growing without bound
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            seen_window, hits = self._counts.get(key, (window, 0))
            if seen_window != window:
                hits = 0
            hits += 1
            self._counts[key] = (window, hits)
        if hits <= self.per_minute:
            return None
        return max(1.0, math.ceil((window + 1) * self.window_s - now))
