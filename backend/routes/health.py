"""GET /healthz (process alive), GET /readyz (bundle loaded and database reachable), GET /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from backend.deps import StateDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: str | None
    database: str
    last_reload_error: str | None
    detail: str | None = None


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: a bundle is served and the database answers",
    responses={503: {"model": Readiness, "description": "Not ready; `detail` says why."}},
)
def readyz(state: StateDep) -> JSONResponse:
    try:
        state.store.ping()
        database = "ok"
    except (DBAPIError, PoolTimeoutError) as exc:
        database = f"unreachable ({type(exc).__name__})"
    version = state.recommender.version if state.recommender else None
    problems = []
    if version is None:
        problems.append(f"no bundle loaded: {state.last_load_error or 'not loaded yet'}")
    if database != "ok":
        problems.append(f"database {database}")
    body = Readiness(
        status="ready" if not problems else "not ready",
        model_version=version,
        database=database,
        last_reload_error=state.last_load_error,
        detail="; ".join(problems) or None,
    )
    return JSONResponse(body.model_dump(), status_code=200 if not problems else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
