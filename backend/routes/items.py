"""Catalogue browse: GET /api/v1/items, /api/v1/items/{item_id}, /api/v1/items/{item_id}/similar.

The catalogue is public (no credentials needed), like a shop's product pages.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from backend.deps import RecommenderDep
from backend.errors import ERROR_RESPONSES
from backend.hotcache import Lru, Missing
from backend.recommender import Recommender
from backend.schemas import ITEM_EXAMPLE, ItemOut, ScoredItemOut

router = APIRouter(prefix="/api/v1/items", tags=["items"], responses=ERROR_RESPONSES)
ItemIdPath = Annotated[str, Path(min_length=1, max_length=64)]


class ItemListResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"total": 1, "offset": 0, "items": [ITEM_EXAMPLE], "categories": ["Books", "Games"]}]
        }
    )
    total: int
    offset: int
    items: list[ItemOut]
    categories: list[str]


class ItemDetail(ItemOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**ITEM_EXAMPLE, "popularity": 6, "attributes": {"description": "A board game."}}]
        }
    )
    popularity: int
    attributes: dict[str, Any]


class SimilarResponse(BaseModel):
    item_id: str
    model_version: str
    items: list[ScoredItemOut]


@router.get("", response_model=ItemListResponse, summary="Browse or search the catalogue")
def list_items(
    recommender: RecommenderDep,
    q: Annotated[str | None, Query(max_length=200, description="Case-insensitive title substring.")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ItemListResponse:
    total, items = recommender.search_items(q, category, limit, offset)
    return ItemListResponse(
        total=total,
        offset=offset,
        items=[ItemOut.of(i) for i in items],
        categories=recommender.catalogue.categories,
    )


# A dict lookup: on the event loop, not through the thread pool (a hand-off costs more than it).
# list_items stays a plain def: its title scan grows with the catalogue.
@router.get("/{item_id}", response_model=ItemDetail, summary="One item's details")
async def get_item(item_id: ItemIdPath, recommender: RecommenderDep) -> ItemDetail:
    item = recommender.item(item_id)
    if item is None:
        raise HTTPException(404, f"unknown item id {item_id!r}")
    return ItemDetail(
        item_id=item.item_id,
        title=item.title,
        categories=item.categories,
        price=item.price,
        popularity=int(recommender.catalogue.users_per_item[item.index]),
        attributes=item.attributes,
    )


# Encoded answers per served Recommender: the same item and k give the same bytes until another
# bundle is served (a swapped-out Recommender takes its entries with it). Bounded by bytes: a
# k=10 answer is ~1.5 KB, a k=100 one ~15 KB.
_SIMILAR_BODY_BYTES = 8 << 20
_similar_bodies: weakref.WeakKeyDictionary[Recommender, Lru[bytes]] = weakref.WeakKeyDictionary()
_similar_lock = threading.Lock()  # one event loop per worker, but tests run apps on threads


def similar_body(recommender: Recommender, item_id: str, k: int) -> bytes:
    """The JSON of `SimilarResponse` for this item and k; the caller has checked that the item
    exists (a 404 otherwise)."""
    with _similar_lock:
        cache = _similar_bodies.get(recommender)
        if cache is None:
            cache = _similar_bodies[recommender] = Lru(1_000_000, _SIMILAR_BODY_BYTES, len)
        body = cache.get((item_id, k), 0.0)
    if isinstance(body, Missing):
        # One FAISS query, well under a millisecond: cheaper on the event loop than a thread hand-off.
        body = (
            SimilarResponse(
                item_id=item_id,
                model_version=recommender.version,
                items=[ScoredItemOut.scored(s) for s in recommender.similar(item_id, k)],
            )
            .model_dump_json()
            .encode()
        )
        with _similar_lock:
            cache.put((item_id, k), body, math.inf)  # no expiry: only a bundle swap changes it
    return body


@router.get(
    "/{item_id}/similar", response_model=SimilarResponse, summary="Nearest items in the item tower's space"
)
async def similar_items(
    item_id: ItemIdPath, recommender: RecommenderDep, k: Annotated[int, Query(ge=1, le=100)] = 10
) -> Response:
    if recommender.item(item_id) is None:
        raise HTTPException(404, f"unknown item id {item_id!r}")
    # Returned as bytes: FastAPI would validate and encode the same model again on every request.
    return Response(similar_body(recommender, item_id, k), media_type="application/json")
