"""GET /api/v1/profile-options: the values the served model knows for each profile field.

The signup and cold-start forms offer these as choices; a value outside them is accepted but
counts as 'unknown' to the model, so it shapes nothing. Public, like the catalogue.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from backend.deps import RecommenderDep
from backend.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["profile"], responses=ERROR_RESPONSES)


class ProfileOptionsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version": "20261128T132825Z-0a9e02",
                    "choices": {"gender": ["F", "M"], "occupation": ["artist", "engineer"]},
                    "numeric": {"age": [22.0, 27.0, 31.0, 39.0, 48.0]},
                    "interests": ["Action", "Comedy"],
                }
            ]
        }
    )

    model_version: str
    choices: dict[str, list[str]] = Field(
        description="Categorical profile field -> the values the model's user encoder knows, sorted."
    )
    numeric: dict[str, list[float]] = Field(
        description="Numeric profile field -> the bucket edges the model uses (any number is accepted)."
    )
    interests: list[str] = Field(description="Catalogue categories accepted as interests.")


@router.get(
    "/profile-options",
    response_model=ProfileOptionsResponse,
    summary="Known values of each profile field, for the profile form",
)
async def profile_options(recommender: RecommenderDep) -> ProfileOptionsResponse:
    spec = recommender.spec
    return ProfileOptionsResponse(
        model_version=recommender.version,
        choices={name: sorted(values) for name, values in spec.profile_vocab.items()},
        numeric={name: list(edges) for name, edges in spec.profile_edges.items()},
        interests=list(recommender.catalogue.categories),
    )
