"""The FastAPI application factory.

    app = create_app(Settings(workdir=Path("artifacts")))      # or create_app() to read EXPLAINREC_*
    uvicorn backend.app:app_from_env --factory                  # what `explainrec serve` runs

Start-up migrates the database and loads the latest bundle. A missing or broken bundle does
not stop the process: /readyz reports why and recommendation routes answer 503 until an
admin reload succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match, Mount
from starlette.types import Scope

from backend.db.checkpoint import WalCheckpointer
from backend.db.engine import make_engine, make_session_factory, upgrade_database
from backend.errors import install_error_handlers
from backend.hotcache import DatabaseWatch, HotCache
from backend.jsonbody import add_body_schemas
from backend.metrics import Metrics
from backend.middleware import BodyLimitMiddleware, EdgeMiddleware
from backend.ratelimit import RateLimiter
from backend.readcache import ReadCacheMiddleware
from backend.routes import (
    admin,
    auth,
    feedback,
    health,
    items,
    profile,
    recommendations,
    segments,
    users,
)
from backend.settings import TELEMETRY_OFF, Settings
from backend.state import ServiceState
from backend.store import Store
from explainrec import __version__
from explainrec.errors import BundleError

log = logging.getLogger("explainrec.backend")

# The API's routers, busiest first: requests are matched against their routes in this order.
API_ROUTERS = tuple(
    module.router
    for module in (recommendations, feedback, items, health, segments, users, auth, admin, profile)
)


class FrontendMount(Mount):
    """The shopper UI's files at "/", except where the API answers: under /api/ and at the API's
    own paths outside it (/healthz, /readyz, /metrics). There a path the API does not serve is
    its JSON 404, and a method a route does not take is its 405 naming the methods it does (the
    catch-all file server had answered GET /api/v1/feedback with 404, and DELETE with a 405
    allowing "GET, HEAD")."""

    def __init__(self, directory: Path, api_paths: frozenset[str]) -> None:
        super().__init__("/", app=StaticFiles(directory=directory, html=True), name="frontend")
        self.api_paths = api_paths

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        root, path = scope.get("root_path", ""), scope.get("path", "")
        route_path = path[len(root) :] if root and path.startswith(root) else path
        if route_path.startswith("/api/") or route_path in self.api_paths:
            return Match.NONE, {}
        return super().matches(scope)


DESCRIPTION = """Explained recommendations from a two-tower model.

Authenticate with an `X-API-Key` header (scopes `read`, `feedback`, `admin`; create one with
`explainrec apikey create`) or with the session cookie from `/api/v1/auth/login`; cookie
requests that change state send the `X-CSRF-Token` header. Every error is `{"detail": "..."}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url(), background_checkpoints=True)
    checkpointer = WalCheckpointer.for_url(settings.resolved_database_url())
    metrics = Metrics()
    state = ServiceState(
        settings=settings,
        store=Store(make_session_factory(engine)),
        metrics=metrics,
        auth_limiter=RateLimiter(settings.rate_limit_auth_per_minute),
        feedback_limiter=RateLimiter(settings.rate_limit_feedback_per_minute),
        cache=HotCache(
            DatabaseWatch.for_url(settings.resolved_database_url()), key_ttl_s=settings.api_key_cache_s
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_startup:
            upgrade_database(engine)
        checkpointer.start()
        try:
            state.load()
        except BundleError as exc:
            log.error("starting without a model: %s", exc)
        yield
        await state.feedback_writer.close()
        state.store.close()
        checkpointer.stop()
        state.cache.watch.close()
        engine.dispose()

    app = FastAPI(
        title="explainrec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else TELEMETRY_OFF,
        # A trailing slash is a JSON 404, as it always was behind the file server, not a redirect
        # that a client would have to follow with its POST body.
        redirect_slashes=False,
    )
    app.state.service = state
    app.state.checkpointer = checkpointer
    install_error_handlers(app, settings.retry_after_s)
    # The API's routes go first and flat: `include_router` nests a router, which FastAPI then
    # matches twice per request (scripts/bench_routing.py times both layouts). The routers'
    # routes already carry their prefix, tags and responses. FastAPI's documentation routes,
    # never busy, come after them.
    api_routes = [route for router in API_ROUTERS for route in router.routes]
    app.router.routes[:0] = api_routes
    add_body_schemas(app)
    frontend = settings.resolved_frontend_dir()
    if frontend is not None:
        app.router.routes.append(FrontendMount(frontend, frozenset(route.path for route in api_routes)))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "X-CSRF-Token", "Idempotency-Key"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Inside EdgeMiddleware, so answers from memory get the same headers and latency metrics.
    app.add_middleware(ReadCacheMiddleware, state=state)
    app.add_middleware(EdgeMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (each worker process builds its own app from EXPLAINREC_*)."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    return create_app(settings)
