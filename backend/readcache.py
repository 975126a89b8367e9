"""Answer repeated reads of recommendations from memory, before FastAPI runs.

    app.add_middleware(ReadCacheMiddleware, state=state)   # inside EdgeMiddleware
    # in the route, once the response is known to be reusable:
    mark_reusable(request, seen, model_version, explanation_sources, user_id=..., owner=...)

A shopper's top-10 list changes only when their own rows change (feedback, profile), when
another bundle is served, or never (the template explainer is deterministic). So the route marks
a response reusable, naming the shopper it is about, this middleware keeps its bytes under the
raw request (path + query string) and its owner, and the same request answers from memory until
that shopper is dropped by a `HotCache.sync()` (their new feedback, or any change to users,
sessions or edits, which drops everyone: backend/hotcache.py); an entry of another bundle version
is never served. Other shoppers' writes leave it in place.

Who may reuse an answer: for an `X-API-Key` whose cached check grants `read`, the response does
not depend on who asks, so any such key gets it (owner None). For a signed-in shopper (the
session cookie, its check cached since the last commit) the owner is the shopper: another
shopper's session never sees it, and a logout is a commit. Everything else (anonymous callers,
unknown or uncached credentials, other scopes, misses) goes through the app as usual, which also
validates every parameter and permission: an entry exists only for a request the route accepted
for that owner. LLM explanations are not reused (a timeout may have replaced one by the
template). `EXPLAINREC_RESPONSE_CACHE=false` turns it off; on PostgreSQL it is off by itself (no
change counter to watch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.requests import cookie_parser

from backend.deps import SESSION_COOKIE
from backend.hotcache import MISS, Missing, Seen
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
    user_id: str  # the shopper the response is about
    owner: str | None  # None: any read key may reuse it; else only this shopper's sessions


@dataclass(frozen=True)
class CachedResponse:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    model_version: str
    route: Any  # the matched route, so metrics label hits like the requests that filled them
    explanation_sources: tuple[str, ...]


def mark_reusable(
    request: Request,
    seen: Seen,
    model_version: str,
    explanation_sources: Sequence[str],
    *,
    user_id: str,
    owner: str | None = None,
) -> None:
    """Tell ReadCacheMiddleware that this request's 200 response, about shopper `user_id`, may
    answer the same request again: from any read key when `owner` is None, else only from a
    session of that shopper."""
    request.state.reusable_response = _Reusable(
        seen, model_version, tuple(explanation_sources), user_id, owner
    )


def _credential(scope: Scope) -> tuple[str, str] | None:
    """("key", secret) for an X-API-Key header (it wins, as in authentication), ("session",
    token) for the session cookie, else None."""
    cookies: list[str] = []
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return "key", bytes(value).decode("latin-1").strip()
        if name == b"cookie":
            cookies.append(bytes(value).decode("latin-1"))
    token = cookie_parser("; ".join(cookies)).get(SESSION_COOKIE) if cookies else None
    return ("session", token) if token else None


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
        credential = _credential(scope)
        if credential is None:  # anonymous callers: the app decides (a 401)
            await self.app(scope, receive, send)
            return
        request_key = (scope["path"], bytes(scope["query_string"]))
        if await self._answer(scope, send, credential, request_key):
            self._hits.inc()
            return
        self._misses.inc()
        await self._fill(scope, receive, send, request_key)

    def _owner(self, credential: tuple[str, str]) -> str | Missing | None:
        """Whose stored answers this caller may get: None (any read key's), a shopper's user id
        (a session's), or MISS when the credential is not verified in memory since the last commit."""
        kind, secret = credential
        if not 0 < len(secret) <= 200:
            return MISS
        if kind == "key":
            record = self.state.cache.api_key(digest(secret))
            if isinstance(record, Missing) or record is None or "read" not in record.scopes:
                return MISS
            return None
        session = self.state.cache.session(digest(secret))
        return session if isinstance(session, Missing) else session.user.user_id

    async def _answer(
        self, scope: Scope, send: Send, credential: tuple[str, str], request_key: tuple[str, bytes]
    ) -> bool:
        cache, recommender = self.state.cache, self.state.recommender
        if recommender is None:
            return False
        cache.sync()  # sees what others committed, so a changed shopper's answers are not served
        owner = self._owner(credential)
        if isinstance(owner, Missing):
            return False
        hit = cache.response((*request_key, owner))
        if not isinstance(hit, CachedResponse) or hit.model_version != recommender.version:
            return False
        scope["route"] = hit.route
        await send({"type": "http.response.start", "status": 200, "headers": list(hit.headers)})
        await send({"type": "http.response.body", "body": hit.body})
        for source in hit.explanation_sources:
            self.state.metrics.explanations.labels(source).inc()
        return True

    async def _fill(self, scope: Scope, receive: Receive, send: Send, request_key: tuple[str, bytes]) -> None:
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
            (*request_key, mark.owner),
            CachedResponse(
                [(bytes(n), bytes(v)) for n, v in start.get("headers", [])],
                b"".join(chunks),
                mark.model_version,
                scope.get("route"),
                mark.explanation_sources,
            ),
            mark.seen,
            mark.user_id,
        )
