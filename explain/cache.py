"""Explanations cached by (user, item, bundle version, evidence hash), LRU-bounded.

The evidence hash is in the key, so new feedback that changes the evidence changes the key:
a cached text never outlives the facts it was written from. A request's cache misses go to
the wrapped explainer as one batch.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Sequence

from explain.base import Explainer, Explanation
from explain.evidence import Evidence

CacheKey = tuple[str, str, str, str]


class CachedExplainer:
    def __init__(self, inner: Explainer, bundle_version: str, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.inner = inner
        self.bundle_version = bundle_version
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, Explanation] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def key(self, evidence: Evidence) -> CacheKey:
        return (evidence.user_id, evidence.item_id, self.bundle_version, evidence.fingerprint())

    def __len__(self) -> int:
        return len(self._entries)

    def _lookup(self, evidences: Sequence[Evidence]) -> tuple[list[CacheKey], list[Explanation | None]]:
        keys = [self.key(ev) for ev in evidences]
        found: list[Explanation | None] = []
        with self._lock:
            for key in keys:
                hit = self._entries.get(key)
                if hit is not None:
                    self._entries.move_to_end(key)
                    self.hits += 1
                else:
                    self.misses += 1
                found.append(hit)
        return keys, found

    def _store(self, keys: Sequence[CacheKey], made: Sequence[Explanation]) -> None:
        with self._lock:
            for key, explanation in zip(keys, made, strict=True):
                if explanation.transient:
                    continue
                self._entries[key] = explanation
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    @staticmethod
    def _merge(
        found: list[Explanation | None], missing: list[int], made: Sequence[Explanation]
    ) -> list[Explanation]:
        for i, explanation in zip(missing, made, strict=True):
            found[i] = explanation
        return [e for e in found if e is not None]

    def explain(self, evidences: Sequence[Evidence]) -> list[Explanation]:
        keys, found = self._lookup(evidences)
        missing = [i for i, e in enumerate(found) if e is None]
        if missing:
            made = self.inner.explain([evidences[i] for i in missing])
            self._store([keys[i] for i in missing], made)
            return self._merge(found, missing, made)
        return [e for e in found if e is not None]

    async def aexplain(self, evidences: Sequence[Evidence]) -> list[Explanation]:
        """Async `explain`; uses the inner explainer's `aexplain` when it has one."""
        keys, found = self._lookup(evidences)
        missing = [i for i, e in enumerate(found) if e is None]
        if not missing:
            return [e for e in found if e is not None]
        todo = [evidences[i] for i in missing]
        inner_async = getattr(self.inner, "aexplain", None)
        if inner_async is not None and inspect.iscoroutinefunction(inner_async):
            made = await inner_async(todo)
        else:
            made = self.inner.explain(todo)
        self._store([keys[i] for i in missing], made)
        return self._merge(found, missing, made)

    def put(self, evidence: Evidence, explanation: Explanation) -> None:
        """Store an explanation made elsewhere (e.g. by an evaluation that keeps the LLM's outcome)."""
        self._store([self.key(evidence)], [explanation])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
