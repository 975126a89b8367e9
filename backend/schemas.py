"""Response/request models shared by several routes (route-specific ones live with their route)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.catalogue import ItemRecord
from backend.recommender import ScoredItem

ShortText = Field(default=None, max_length=64)


class ProfileIn(BaseModel):
    """The profile form: every field optional; unknown values count as 'unknown' for the model."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "age": 31,
                    "gender": "F",
                    "occupation": "engineer",
                    "location": "north",
                    "interests": ["Books", "Games"],
                }
            ]
        },
    )

    age: int | None = Field(default=None, ge=0, le=120)
    gender: str | None = Field(default=None, max_length=32)
    occupation: str | None = Field(default=None, max_length=64)
    location: str | None = Field(default=None, max_length=64)
    interests: list[str] = Field(default_factory=list, max_length=50)

    def profile_fields(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"interests"})
        return {k: v for k, v in data.items() if v not in (None, "")}

    def clean_interests(self) -> list[str]:
        return list(dict.fromkeys(c.strip() for c in self.interests if c and len(c) <= 64))


class ProfileOut(BaseModel):
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    location: str | None = None
    interests: list[str] = Field(default_factory=list)


class ExplanationOut(BaseModel):
    text: str
    source: Literal["llm", "template"]
    evidence: dict[str, Any]


class ItemOut(BaseModel):
    item_id: str
    title: str
    categories: list[str]
    price: float | None

    @classmethod
    def of(cls, item: ItemRecord) -> ItemOut:
        return cls(item_id=item.item_id, title=item.title, categories=item.categories, price=item.price)


class ScoredItemOut(ItemOut):
    score: float
    explanation: ExplanationOut | None = None

    @classmethod
    def scored(cls, scored: ScoredItem) -> ScoredItemOut:
        exp = scored.explanation
        return cls(
            item_id=scored.item.item_id,
            title=scored.item.title,
            categories=scored.item.categories,
            price=scored.item.price,
            score=round(scored.score, 6),
            explanation=ExplanationOut(text=exp.text, source=exp.source, evidence=exp.evidence)
            if exp is not None
            else None,
        )


class SegmentRef(BaseModel):
    id: int
    name: str


ITEM_EXAMPLE: dict[str, Any] = {
    "item_id": "i14",
    "title": "Rustic Board Game 14",
    "categories": ["Games"],
    "price": 23.0,
}
