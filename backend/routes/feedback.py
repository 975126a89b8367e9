"""POST /api/v1/feedback: store one event; the next recommendation folds the shopper in again.

201 only after the row is committed; concurrent writes share one commit (group commit,
backend/feedbackwriter.py). Fold-in is lazy: the write only drops the shopper's cached
state, and the next read (on any worker: see backend/hotcache.py) re-reads the feedback and
encodes the new vector, which the Recommender then caches. A repeated `Idempotency-Key`
(header or body field) returns the stored event with 200 and writes nothing; the same key with
a different event is a 409. Shoppers write their own feedback; API keys need the `feedback`
scope, and writing for a user unknown to both the model and the database needs `admin`.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.concurrency import run_in_threadpool

from backend.deps import client_ip, get_serving, limit
from backend.directroute import DirectRoute
from backend.errors import ERROR_RESPONSES
from backend.jsonbody import openapi_json_body, parse_json_body
from backend.recommender import is_positive
from backend.store import FeedbackWrite, IdempotencyConflictError, as_utc, now

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"], responses=ERROR_RESPONSES)
EventType = Literal["view", "click", "cart", "purchase", "rating", "like", "dismiss"]
# How far ahead of the server's clock an event's timestamp may be (clients' clocks drift).
MAX_CLOCK_SKEW = timedelta(minutes=5)
KeyStr = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[\x21-\x7e]+$")]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "u00", "item_id": "i14", "event": "like"},
                {
                    "user_id": "u00",
                    "item_id": "i21",
                    "event": "rating",
                    "value": 5,
                    "timestamp": "2026-11-28T10:00:00Z",
                    "idempotency_key": "c0ffee-1",
                },
            ]
        },
    )

    user_id: str = Field(min_length=1, max_length=64)
    item_id: str = Field(min_length=1, max_length=64)
    event: EventType
    value: float | None = Field(
        default=None,
        ge=-1e9,
        le=1e9,
        allow_inf_nan=False,
        description="Rating (required for 'rating', 0..10) or an amount.",
    )
    timestamp: datetime | None = Field(
        default=None,
        description="When it happened (at most 5 minutes ahead of the server's clock); default now (UTC).",
    )
    idempotency_key: KeyStr | None = Field(default=None, description="Or send the Idempotency-Key header.")

    @field_validator("timestamp")
    @classmethod
    def _same_instant_in_utc(cls, value: datetime | None) -> datetime | None:
        # Stored in UTC (backend/store.py); year 1 or 9999 at an offset has no UTC date.
        if value is None:
            return None
        try:
            instant = as_utc(value)
        except OverflowError:
            raise ValueError("timestamp is out of range once converted to UTC") from None
        # An event cannot have happened after now: a client's wrong clock (or a mistyped year)
        # would be stored and shown as a date still to come. Clocks drift a little.
        server_time = now()
        if instant > server_time + MAX_CLOCK_SKEW:
            raise ValueError(
                f"timestamp {instant.isoformat()} is in the future: the server's clock says "
                f"{server_time.isoformat(timespec='seconds')} and allows {MAX_CLOCK_SKEW} of skew"
            )
        return instant

    @model_validator(mode="after")
    def _rating_has_value(self) -> FeedbackRequest:
        if self.event == "rating" and (self.value is None or not 0 <= self.value <= 10):
            raise ValueError("a 'rating' event needs a value between 0 and 10")
        return self


class FeedbackResponse(BaseModel):
    id: int
    user_id: str
    item_id: str
    event: EventType
    value: float | None
    timestamp: datetime
    duplicate: bool = Field(description="True when this idempotency key was already stored.")
    effect: Literal["positive", "dismiss", "recorded"] = Field(
        description="positive: added to the shopper's history; dismiss: the item is no longer "
        "recommended to them; recorded: stored only (e.g. a low rating)."
    )
    model_version: str


IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 60
# The header as FastAPI documents `Annotated[str | None, Header(alias=..., max_length=60)] = None`.
_IDEMPOTENCY_HEADER_DOC = {
    "in": "header",
    "name": IDEMPOTENCY_HEADER,
    "required": False,
    "schema": {
        "anyOf": [{"maxLength": MAX_KEY_LENGTH, "type": "string"}, {"type": "null"}],
        "title": IDEMPOTENCY_HEADER,
    },
}


def idempotency_header(request: Request) -> str | None:
    """The Idempotency-Key header; a 422 as FastAPI words it when longer than 60 characters."""
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is not None and len(value) > MAX_KEY_LENGTH:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("header", IDEMPOTENCY_HEADER),
                    "msg": f"String should have at most {MAX_KEY_LENGTH} characters",
                    "input": value,
                    "ctx": {"max_length": MAX_KEY_LENGTH},
                }
            ]
        )
    return value


async def post_feedback(request: Request) -> Response:
    # Resolved here rather than declared: FastAPI's handling of a body, a header and a dependency
    # cost a third of this route's CPU (backend/jsonbody.py, backend/directroute.py). The caller
    # is checked first.
    serving = await get_serving(request)
    body = await parse_json_body(request, FeedbackRequest)
    idempotency_key = idempotency_header(request)
    state, recommender, principal = serving.state, serving.recommender, serving.principal
    store = state.store
    limit(state, "feedback", "ip:" + client_ip(request))
    limit(state, "feedback", principal.label)
    principal.require_user(body.user_id, "feedback")
    if recommender.item(body.item_id) is None:
        raise HTTPException(
            422, f"unknown item id {body.item_id!r}: feedback is only accepted for catalogue items"
        )
    if (
        not recommender.knows_user(body.user_id)
        and principal.kind == "api_key"
        and "admin" not in principal.scopes
        and await run_in_threadpool(store.get_user, body.user_id) is None
    ):
        raise HTTPException(
            404, f"unknown user id {body.user_id!r}; writing for a new user needs the admin scope"
        )
    key = idempotency_key or body.idempotency_key
    write = FeedbackWrite(body.user_id, body.item_id, body.event, body.value, body.timestamp, key)
    joined = time.perf_counter()
    try:
        # Committed together with the other writes waiting now (backend/feedbackwriter.py).
        record, created = await state.feedback_writer.add(write)
    except IdempotencyConflictError as exc:
        raise HTTPException(409, f"idempotency key {key!r} was already used for a different event") from exc
    finally:
        state.metrics.feedback_wait_seconds.observe(time.perf_counter() - joined)
    if created:
        state.metrics.feedback.labels(body.event).inc()
    state.cache.forget_shopper(body.user_id)
    effect: Literal["positive", "dismiss", "recorded"] = (
        "dismiss"
        if record.event == "dismiss"
        else "positive"
        if is_positive(record.event, record.value)
        else "recorded"
    )
    stored = FeedbackResponse(
        id=record.id,
        user_id=record.user_id,
        item_id=record.item_id,
        event=record.event,  # type: ignore[arg-type]
        value=record.value,
        timestamp=record.timestamp,
        duplicate=not created,
        effect=effect,
        model_version=recommender.version,
    )
    # Encoded here: FastAPI would validate the model again before encoding it.
    return Response(stored.model_dump_json(), 201 if created else 200, media_type="application/json")


router.add_api_route(
    "",
    post_feedback,
    methods=["POST"],
    route_class_override=DirectRoute,
    response_model=FeedbackResponse,
    status_code=201,
    summary="Record feedback on an item",
    responses={
        200: {"model": FeedbackResponse, "description": "Replay of a stored idempotency key."},
        409: {"model": ERROR_RESPONSES[400]["model"], "description": "Key reused for another event."},
    },
    openapi_extra={**openapi_json_body(FeedbackRequest), "parameters": [_IDEMPOTENCY_HEADER_DOC]},
)
