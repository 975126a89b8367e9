"""POST /api/v1/admin/reload: swap in the latest (or a named) bundle; API key with `admin` scope."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from backend.deps import PrincipalDep, StateDep
from backend.errors import ERROR_RESPONSES, without_paths
from explainrec.errors import BundleError

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=ERROR_RESPONSES)


class ReloadRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{}, {"version": "20261128T044255Z-99e47c"}]}
    )
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="A version directory under the bundles root; default: LATEST.",
    )


class ReloadResponse(BaseModel):
    model_version: str
    previous_version: str | None
    loaded_at: datetime


@router.post("/reload", response_model=ReloadResponse, summary="Load a bundle and swap it in atomically")
async def reload_bundle(
    principal: PrincipalDep, state: StateDep, body: ReloadRequest | None = None
) -> ReloadResponse:
    principal.require_scope("admin")
    previous = state.recommender.version if state.recommender else None
    try:
        # Loading takes a while; the event loop keeps serving the old bundle meanwhile.
        recommender = await run_in_threadpool(state.load, body.version if body else None)
    except BundleError as exc:
        serving = f"still serving {previous}" if previous else "nothing is being served"
        reason = without_paths(str(exc), state.bundles_root())
        raise HTTPException(422, f"bundle refused: {reason}; {serving}") from exc
    assert state.loaded_at is not None
    return ReloadResponse(
        model_version=recommender.version, previous_version=previous, loaded_at=state.loaded_at
    )
