"""Answer repeated API-key reads of recommendations from memory, before FastAPI runs.

    app.add_middleware(ReadCacheMiddleware, state=state)   # inside EdgeMiddleware
    # in the route, once the response is known to be reusable:
    mark_reusable(request, seen, explanation_sources)

A top-10 list changes only when the database commits (feedback, profile, keys), when another
bundle is served, or never (the template explainer is deterministic). So the route marks a
response reusable, this middleware keeps its bytes under the raw request (path + query string),
and the same request answers from memory until any of those changes: at a commit, the next
`HotCache.sync()` drops every stored response (the shoppers' rule, backend/hotcache.py), and an
entry of another bundle version is never served.

Only requests with an `X-API-Key` whose cached check grants `read` are answered here: for such
a key the response does not depend on who asks. Everything else (cookies, unknown or
uncached keys, other scopes, misses) goes through the app as usual, which also validates every
parameter: an entry exists only for a query the route accepted. LLM explanations are not
reused (a timeout may have replaced one by the template). `EXPLAINREC_RESPONSE_CACHE=false`
turns it off; on PostgreSQL it is off by itself (no change counter to watch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from backend.hotcache import Missing, Seen
from backend.middleware import ASGIApp, Message, Receive, Scope, Send
from backend.security import digest
from backend.state import ServiceState

CACHED_PATHS = frozenset({"/api/v1/recommendations"})
_MARK = "reusable_response"


@dataclass(frozen=True)
class _Reusable:
    seen: Seen  # the sync before the reads behind the response
    model_version: str
    explanation_sources: tuple[str, ...]


@dataclass(frozen=True)
class CachedResponse:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    model_version: str
    route: Any  # the matched route, so metrics label hits like the requests that filled them
    explanation_sources: tuple[str, ...]


def mark_reusable(
    request: Request, seen: Seen, model_version: str, explanation_sources: Sequence[str]
) -> None:
    """Tell ReadCacheMiddleware that this request's 200 response may answer the same request again."""
    request.state.reusable_response = _Reusable(seen, model_version, tuple(explanation_sources))


def _api_key(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return bytes(value)
    return None


class ReadCacheMiddleware:
    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app = app
        self.state = state
        self._hits = state.metrics.response_cache.labels("hit")
        self._misses = state.metrics.response_cache.labels("miss")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] not in CACHED_PATHS
            or not self.state.settings.response_cache
        ):
            await self.app(scope, receive, send)
            return
        raw_key = _api_key(scope)
        if raw_key is None:  # cookie sessions and anonymous callers: the app decides
            await self.app(scope, receive, send)
            return
        key = (scope["path"], bytes(scope["query_string"]))
        if await self._answer(scope, send, raw_key, key):
            self._hits.inc()
            return
        self._misses.inc()
        await self._fill(scope, receive, send, key)

    async def _answer(self, scope: Scope, send: Send, raw_key: bytes, key: tuple[str, bytes]) -> bool:
        cache, recommender = self.state.cache, self.state.recommender
        if recommender is None:
            return False
        cache.sync()  # drops every stored response if anything committed since the last request
        try:
            secret = raw_key.decode("latin-1").strip()
        except UnicodeDecodeError:
            return False
        if not 0 < len(secret) <= 200:
            return False
        record = cache.api_key(digest(secret))
        if isinstance(record, Missing) or record is None or "read" not in record.scopes:
            return False
        hit = cache.response(key)
        if not isinstance(hit, CachedResponse) or hit.model_version != recommender.version:
            return False
        scope["route"] = hit.route
        await send({"type": "http.response.start", "status": 200, "headers": list(hit.headers)})
        await send({"type": "http.response.body", "body": hit.body})
        for source in hit.explanation_sources:
            self.state.metrics.explanations.labels(source).inc()
        return True

    async def _fill(self, scope: Scope, receive: Receive, send: Send, key: tuple[str, bytes]) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        complete = False

        async def capture(message: Message) -> None:
            nonlocal start, complete
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, capture)
        mark = scope.get("state", {}).get(_MARK)
        if not isinstance(mark, _Reusable) or start is None or start["status"] != 200 or not complete:
            return
        self.state.cache.put_response(
            key,
            CachedResponse(
                [(bytes(n), bytes(v)) for n, v in start.get("headers", [])],
                b"".join(chunks),
                mark.model_version,
                scope.get("route"),
                mark.explanation_sources,
            ),
            mark.seen,
        )
