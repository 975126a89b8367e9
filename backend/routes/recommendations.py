"""GET /api/v1/recommendations and POST /api/v1/recommendations/cold-start.

The GET is the hot path: it runs on the event loop (no thread hand-off) when the shopper's
stored state is cached and the explainer is the template, and its body is built as plain dicts
and encoded with orjson; the response model still documents it in OpenAPI and tests check the
two agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from backend.deps import get_serving, serving_recommender
from backend.directroute import DirectRoute
from backend.errors import ERROR_RESPONSES
from backend.jsonbody import openapi_json_body, parse_json_body
from backend.queryparams import openapi_query, parse_query
from backend.readcache import mark_reusable
from backend.recommender import Feedback, RecQuery, RecResult, Shopper
from backend.schemas import ITEM_EXAMPLE, ProfileIn, ScoredItemOut, SegmentRef
from backend.shoppers import cached_shopper
from backend.state import ServiceState
from embeddings.retrieval import SearchFilters

router = APIRouter(prefix="/api/v1/recommendations", tags=["recommendations"], responses=ERROR_RESPONSES)
MAX_K = 100
IdStr = Annotated[str, Field(min_length=1, max_length=64)]


class RecommendationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u00",
                    "model_version": "20261128T044255Z-99e47c",
                    "strategy": "personalized",
                    "cold_start": False,
                    "segment": {"id": 0, "name": "Games & Books"},
                    "items": [
                        {
                            **ITEM_EXAMPLE,
                            "score": 0.205,
                            "explanation": {
                                "text": 'Recommended because you liked "Bright Novel 5".',
                                "source": "template",
                                "evidence": {
                                    "item_id": "i14",
                                    "history_items": [{"item_id": "i05", "title": "Bright Novel 5"}],
                                },
                            },
                        }
                    ],
                }
            ]
        }
    )

    user_id: str | None
    model_version: str
    strategy: Literal["personalized", "cold-start", "popularity"] = Field(
        description="personalized: known to the model (folded in with fresh feedback); cold-start: from a "
        "profile, interests or feedback only; popularity: nothing known about the user."
    )
    cold_start: bool
    segment: SegmentRef | None
    items: list[ScoredItemOut]


def to_response(result: RecResult) -> RecommendationResponse:
    return RecommendationResponse(
        user_id=result.user_id,
        model_version=result.model_version,
        strategy=result.strategy,
        cold_start=result.strategy != "personalized",
        segment=SegmentRef(id=result.segment_id, name=result.segment_name or "")
        if result.segment_id is not None
        else None,
        items=[ScoredItemOut.scored(s) for s in result.items],
    )


def to_payload(result: RecResult) -> dict[str, Any]:
    """The same JSON as `to_response(result)`, without building and re-validating pydantic models."""
    items = []
    for scored in result.items:
        item, exp = scored.item, scored.explanation
        items.append(
            {
                "item_id": item.item_id,
                "title": item.title,
                "categories": item.categories,
                "price": item.price,
                "score": round(scored.score, 6),
                "explanation": exp.to_dict() if exp is not None else None,
            }
        )
    segment = None
    if result.segment_id is not None:
        segment = {"id": result.segment_id, "name": result.segment_name or ""}
    return {
        "user_id": result.user_id,
        "model_version": result.model_version,
        "strategy": result.strategy,
        "cold_start": result.strategy != "personalized",
        "segment": segment,
        "items": items,
    }


def json_response(result: RecResult) -> Response:
    try:
        body = orjson.dumps(to_payload(result), option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # evidence holding a type orjson does not know: let pydantic convert it
        body = to_response(result).model_dump_json().encode()
    return Response(body, media_type="application/json")


def _count_explanations(request: Request, result: RecResult) -> list[str]:
    """Count the explanations served; returns their sources."""
    metrics = request.app.state.service.metrics
    sources: list[str] = [s.explanation.source for s in result.items if s.explanation is not None]
    for source in sources:
        metrics.explanations.labels(source).inc()
    return sources


class RecommendationParams(BaseModel):
    """GET /api/v1/recommendations' query string (backend/queryparams.py: validated in one call)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str | None = Field(
        None, min_length=1, max_length=64, description="Defaults to the signed-in shopper."
    )
    k: int = Field(10, ge=1, le=MAX_K)
    explain: bool = False
    exclude_seen: bool = True
    category: list[str] | None = Field(
        None, max_length=50, description="Only items in any of these categories."
    )
    min_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    max_price: float | None = Field(None, ge=0, allow_inf_nan=False)
    exclude: list[str] | None = Field(
        None, max_length=500, description="Item ids to leave out (repeat or comma-separate)."
    )


async def recommendations(request: Request) -> Response:
    # The caller resolved here, not as a dependency, and the route handed to Starlette as it is
    # (backend/directroute.py): FastAPI's per-request handling was a fifth of this route's CPU.
    serving = await get_serving(request)
    params = parse_query(request, RecommendationParams)
    user_id, k, explain = params.user_id, params.k, params.explain
    state, recommender, principal = serving.state, serving.recommender, serving.principal
    if user_id is None:
        if principal.user is None:
            raise HTTPException(422, "query parameter 'user_id' is required with an API key")
        user_id = principal.user.user_id
    principal.require_user(user_id, "read")
    excluded = [part.strip() for value in params.exclude or [] for part in value.split(",") if part.strip()]
    filters = SearchFilters(
        categories=params.category or None, min_price=params.min_price, max_price=params.max_price
    )
    shopper = await cached_shopper(state.cache, state.store, user_id, request.state.cache_version)
    query = RecQuery(
        k=k, explain=explain, exclude_seen=params.exclude_seen, filters=filters, exclude_item_ids=excluded
    )
    if explain and state.settings.explainer != "template":
        # A language model takes seconds: keep it off the event loop.
        result = await run_in_threadpool(recommender.recommend, shopper, query)
    else:
        # Milliseconds of numpy/FAISS: cheaper inline than a thread hand-off (the GIL serialises it anyway).
        result = recommender.recommend(shopper, query)
    sources = _count_explanations(request, result)
    if not explain or state.settings.explainer == "template":
        # Same request, same answer until this shopper's rows change or another bundle is served
        # (backend/readcache.py): for any read key, or for this shopper's sessions.
        owner = user_id if principal.kind == "session" else None
        mark_reusable(
            request, request.state.cache_version, result.model_version, sources, user_id=user_id, owner=owner
        )
    return json_response(result)


router.add_api_route(
    "",
    recommendations,
    methods=["GET"],
    route_class_override=DirectRoute,
    response_model=RecommendationResponse,
    summary="Top-k items for a shopper",
    openapi_extra=openapi_query(RecommendationParams),
)


class ColdStartRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "profile": {
                        "age": 31,
                        "gender": "F",
                        "occupation": "engineer",
                        "location": "north",
                        "interests": ["Garden"],
                    },
                    "liked_items": ["i21"],
                    "k": 10,
                    "explain": True,
                }
            ]
        },
    )

    profile: ProfileIn = Field(default_factory=ProfileIn)
    liked_items: list[IdStr] = Field(default_factory=list, max_length=200)
    k: int = Field(default=10, ge=1, le=MAX_K)
    explain: bool = True


async def cold_start(request: Request) -> Response:
    # Reads nothing stored and writes nothing, so anonymous callers may use it (the signup page
    # does). Handed to Starlette as it is, like the GET (backend/directroute.py): FastAPI's body
    # and dependency handling were a quarter of this route's CPU.
    state: ServiceState = request.app.state.service
    recommender = serving_recommender(state)
    body = await parse_json_body(request, ColdStartRequest)
    recommender.item_indices(body.liked_items, "liked_items")
    shopper = Shopper(
        None,
        body.profile.profile_fields(),
        body.profile.clean_interests(),
        [Feedback(i, item, "like") for i, item in enumerate(body.liked_items)],
    )
    query = RecQuery(k=body.k, explain=body.explain)
    if body.explain and state.settings.explainer != "template":
        result = await run_in_threadpool(recommender.recommend, shopper, query)
    else:
        result = recommender.recommend(shopper, query)  # one user-tower pass: well under 1 ms of CPU
    _count_explanations(request, result)
    return json_response(result)


router.add_api_route(
    "/cold-start",
    cold_start,
    methods=["POST"],
    route_class_override=DirectRoute,
    response_model=RecommendationResponse,
    summary="Picks for a new shopper from a profile form (nothing is stored)",
    openapi_extra=openapi_json_body(ColdStartRequest),
)
