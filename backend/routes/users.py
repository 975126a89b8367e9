"""GET /api/v1/users/{user_id}: profile, segment and recent history (own data, or an API key with read)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict

from backend.deps import PrincipalDep, RecommenderDep, StoreDep
from backend.errors import ERROR_RESPONSES
from backend.schemas import ItemOut, ProfileOut, SegmentRef
from backend.shoppers import load_shopper

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=ERROR_RESPONSES)


class FeedbackOut(BaseModel):
    item_id: str
    title: str | None
    event: str
    value: float | None
    timestamp: datetime


class UserResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u00",
                    "known_to_model": True,
                    "has_account": False,
                    "profile": {
                        "age": 18,
                        "gender": "F",
                        "occupation": "student",
                        "location": "north",
                        "interests": [],
                    },
                    "segment": {"id": 0, "name": "Games & Books"},
                    "history": [
                        {
                            "item_id": "i05",
                            "title": "Bright Novel 5",
                            "categories": ["Books", "Games"],
                            "price": 12.0,
                        }
                    ],
                    "feedback": [
                        {
                            "item_id": "i14",
                            "title": "Rustic Board Game 14",
                            "event": "like",
                            "value": None,
                            "timestamp": "2026-11-28T10:00:00Z",
                        }
                    ],
                }
            ]
        }
    )
    user_id: str
    known_to_model: bool
    has_account: bool
    profile: ProfileOut
    segment: SegmentRef | None
    history: list[ItemOut]
    feedback: list[FeedbackOut]


@router.get(
    "/{user_id}", response_model=UserResponse, summary="A shopper's profile, segment and recent history"
)
def get_user(
    user_id: Annotated[str, Path(min_length=1, max_length=64)],
    principal: PrincipalDep,
    recommender: RecommenderDep,
    store: StoreDep,
    recent: Annotated[int, Query(ge=1, le=200)] = 20,
) -> UserResponse:
    principal.require_user(user_id, "read")
    shopper, stored, _ = load_shopper(store, user_id)
    known = recommender.knows_user(user_id)
    if not known and stored is None and not shopper.feedback:
        raise HTTPException(404, f"unknown user id {user_id!r}")
    profile = {**recommender.bundle_profile(user_id), **dict(shopper.profile)}
    segment = recommender.fold_in(shopper)
    history = [recommender.catalogue.items[i] for i in recommender.bundle_history(user_id)[-recent:]][::-1]
    events = list(shopper.feedback)[-recent:][::-1]
    return UserResponse(
        user_id=user_id,
        known_to_model=known,
        has_account=stored is not None,
        profile=ProfileOut(
            age=profile.get("age"),
            gender=profile.get("gender"),
            occupation=profile.get("occupation"),
            location=profile.get("location"),
            interests=list(shopper.interests),
        ),
        segment=SegmentRef(id=segment, name=recommender.segment_names[segment])
        if segment is not None
        else None,
        history=[ItemOut.of(i) for i in history],
        feedback=[
            FeedbackOut(
                item_id=e.item_id,
                title=(it.title if (it := recommender.item(e.item_id)) else None),
                event=e.event,
                value=e.value,
                timestamp=e.timestamp,
            )
            for e in events
            if e.timestamp is not None
        ],
    )
