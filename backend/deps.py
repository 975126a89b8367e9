"""FastAPI dependencies: service objects and who is calling.

Callers authenticate with `X-API-Key` (scopes read/feedback/admin) or the session cookie set
by signup/login. Cookie-authenticated requests that change state must echo the session's CSRF
token in `X-CSRF-Token` (the token also sits in the readable `csrf_token` cookie). A session
may read and write only its own shopper's data.

API-key checks are cached in process (backend/hotcache.py: dropped when a key changes where
SQLite says so, else after 30 s); on SQLite sessions are too, dropped at any change to users or
sessions (a logout, a profile). When the database is down, the last good lookup of a credential
(kept for a few minutes) still authenticates reads, so recommendations keep flowing.

The dependencies are `async def` so FastAPI calls them on the event loop instead of handing
each one to the thread pool; only a cache miss goes to a thread for its database read.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool

from backend.hotcache import HotCache, Missing, Seen
from backend.recommender import Recommender
from backend.security import digest, same
from backend.settings import Settings
from backend.state import ServiceState
from backend.store import ApiKeyRecord, SessionRecord, Store, UserRecord

SESSION_COOKIE = "explainrec_session"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STALE_AUTH_S = 300.0


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_store(state: StateDep) -> Store:
    return state.store


def serving_recommender(state: ServiceState) -> Recommender:
    """The Recommender now served; 503 while none is loaded."""
    # Read once: this request keeps this Recommender even if a reload swaps it meanwhile.
    recommender = state.recommender
    if recommender is None:
        reason = state.last_load_error or "no bundle loaded yet"
        raise HTTPException(503, f"no model is being served: {reason}", headers={"Retry-After": "10"})
    return recommender


async def get_recommender(state: StateDep) -> Recommender:
    return serving_recommender(state)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]


@dataclass(frozen=True)
class Principal:
    kind: Literal["api_key", "session"]
    scopes: frozenset[str]
    user: UserRecord | None = None  # the signed-in shopper for sessions
    api_key: ApiKeyRecord | None = None
    csrf_token: str | None = None

    @property
    def label(self) -> str:
        """Rate-limit bucket: one per key or per shopper."""
        if self.api_key is not None:
            return f"key:{self.api_key.id}"
        return f"user:{self.user.user_id if self.user else '?'}"

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise HTTPException(403, f"this credential lacks the '{scope}' scope")

    def require_user(self, user_id: str, scope: str) -> None:
        """Allow access to `user_id`'s data: any user for API keys with the scope, self for sessions."""
        self.require_scope(scope)
        if self.kind == "session" and (self.user is None or self.user.user_id != user_id):
            raise HTTPException(403, "a signed-in shopper can only access their own data")


class _StaleCache:
    """Last good credential lookups, used only while the database is unreachable."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def put(self, key: str, value: object) -> None:
        with self._lock:
            if len(self._entries) > 50_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic(), value)

    def get(self, key: str) -> object | None:
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or time.monotonic() - hit[0] > STALE_AUTH_S:
            return None
        return hit[1]

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


stale_credentials = _StaleCache()


def _lookup_key(store: Store, key_digest: str) -> ApiKeyRecord | None:
    try:
        record = store.get_api_key_by_digest(key_digest)
    except (DBAPIError, PoolTimeoutError):
        cached = stale_credentials.get("k:" + key_digest)
        if isinstance(cached, ApiKeyRecord):
            return cached
        raise
    if record is not None:
        stale_credentials.put("k:" + key_digest, record)
    return record


async def _verify_key(cache: HotCache, store: Store, key: str, seen: Seen) -> ApiKeyRecord | None:
    key_digest = digest(key)
    hit = cache.api_key(key_digest)
    if not isinstance(hit, Missing):
        return hit
    record = await run_in_threadpool(_lookup_key, store, key_digest)
    cache.put_api_key(key_digest, record, seen)
    return record


def _lookup_session(store: Store, token: str) -> SessionRecord | None:
    try:
        record = store.get_session(token)
    except (DBAPIError, PoolTimeoutError):
        cached = stale_credentials.get("s:" + token)
        if isinstance(cached, SessionRecord):
            return cached
        raise
    if record is not None:
        stale_credentials.put("s:" + token, record)
    return record


async def _verify_session(cache: HotCache, store: Store, token: str, seen: Seen) -> SessionRecord | None:
    token_digest = digest(token)
    hit = cache.session(token_digest)
    if not isinstance(hit, Missing):
        return hit
    record = await run_in_threadpool(_lookup_session, store, token)
    if record is not None:
        cache.put_session(token_digest, record, seen)
    return record


async def get_principal(request: Request, state: StateDep) -> Principal | None:
    return await authenticate(request, state)


async def authenticate(request: Request, state: ServiceState) -> Principal | None:
    """The authenticated caller, None when anonymous; 401 for a wrong API key, 403 for a bad CSRF token."""
    store = state.store
    # One change check per request; routes reuse it for their own cache reads (cache_version).
    seen = request.state.cache_version = state.cache.sync()
    key = request.headers.get("x-api-key")
    if key is not None:
        record = await _verify_key(state.cache, store, key.strip(), seen) if 0 < len(key) <= 200 else None
        if record is None:
            raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "ApiKey"})
        return Principal("api_key", record.scopes, api_key=record)
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    session = await _verify_session(state.cache, store, token, seen)
    if session is None:
        return None
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER.lower(), "")
        if not sent or not same(sent, session.csrf_token):
            raise HTTPException(
                403, f"missing or wrong {CSRF_HEADER} header for a cookie-authenticated request"
            )
    return Principal(
        "session", frozenset({"read", "feedback"}), user=session.user, csrf_token=session.csrf_token
    )


MaybePrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def _unauthenticated() -> HTTPException:
    return HTTPException(401, "sign in or send an X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})


async def require_principal(principal: MaybePrincipalDep) -> Principal:
    if principal is None:
        raise _unauthenticated()
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]


@dataclass(frozen=True)
class Serving:
    """What the busiest routes need, resolved by one call of `get_serving` in the route: FastAPI
    spends some 10 µs per dependency per request (the aliases above chain nine for a feedback
    write), and solving even one cost a tenth of a top-10 request."""

    state: ServiceState
    recommender: Recommender
    principal: Principal


async def get_serving(request: Request) -> Serving:
    """The signed-in caller (401 if none) and the Recommender now served (503 if none)."""
    state: ServiceState = request.app.state.service
    principal = await authenticate(request, state)
    if principal is None:
        raise _unauthenticated()
    return Serving(state, serving_recommender(state), principal)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def limit(state: ServiceState, limiter_name: Literal["auth", "feedback"], key: str) -> None:
    limiter = state.auth_limiter if limiter_name == "auth" else state.feedback_limiter
    wait = limiter.hit(f"{limiter_name}:{key}")
    if wait is not None:
        raise HTTPException(
            429,
            f"too many {limiter_name} requests; retry in {int(wait)} s",
            headers={"Retry-After": str(int(wait))},
        )
