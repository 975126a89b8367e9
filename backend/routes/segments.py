"""Segments dashboard data: GET /api/v1/segments, /api/v1/segments/{id}, and GET /api/v1/model.

Aggregates only (sizes, mixes, PCA points without user ids), so they are public like the catalogue.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict

from backend.deps import RecommenderDep
from backend.errors import ERROR_RESPONSES
from backend.recommender import Recommender

router = APIRouter(prefix="/api/v1", tags=["segments"], responses=ERROR_RESPONSES)


class Point(BaseModel):
    x: float
    y: float
    segment: int


class SegmentProfileOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 0,
                    "name": "Games & Books",
                    "size": 10,
                    "share": 0.5,
                    "top_categories": [{"category": "Games", "share": 0.52, "lift": 1.95}],
                    "top_items": [{"item_id": "i11", "title": "Modern Board Game 11", "count": 6}],
                    "age_mix": {"18-24": 0.2},
                    "mean_age": 41.0,
                    "gender_mix": {"F": 0.5, "M": 0.5},
                    "rfm": {"recency_days": 1.0, "frequency": 7.0, "monetary": 318.0},
                    "centroid": {"x": 0.1, "y": -0.3},
                }
            ]
        }
    )
    id: int
    name: str
    size: int
    share: float
    top_categories: list[dict[str, Any]]
    top_items: list[dict[str, Any]]
    age_mix: dict[str, float]
    mean_age: float | None
    gender_mix: dict[str, float]
    rfm: dict[str, float]
    centroid: dict[str, float]


class SegmentsResponse(BaseModel):
    model_version: str
    method: str
    k: int
    silhouette: float | None
    rfm_comparison: dict[str, float]
    segments: list[SegmentProfileOut]
    points: list[Point]


class SegmentDetailResponse(BaseModel):
    model_version: str
    segment: SegmentProfileOut
    points: list[Point]


class ModelResponse(BaseModel):
    model_version: str
    dataset_name: str
    created_at: str | None
    metrics: dict[str, float]
    counts: dict[str, int]
    index: dict[str, Any]
    explainer: str


def _profile(rec: Recommender, i: int) -> SegmentProfileOut:
    data = asdict(rec.segments.profiles[i])
    data["id"] = data.pop("segment")
    xy = rec.segments.centroid_xy[i]
    return SegmentProfileOut(**data, centroid={"x": float(xy[0]), "y": float(xy[1])})


def _points(rec: Recommender, only: int | None = None) -> list[Point]:
    seg = rec.segments
    labels = seg.labels[seg.sample_users]
    return [
        Point(x=round(float(xy[0]), 5), y=round(float(xy[1]), 5), segment=int(label))
        for xy, label in zip(seg.user_xy, labels, strict=True)
        if only is None or int(label) == only
    ]


@router.get("/segments", response_model=SegmentsResponse, summary="All segments with a PCA map of users")
def list_segments(recommender: RecommenderDep) -> SegmentsResponse:
    summary = recommender.segments.summary()
    return SegmentsResponse(
        model_version=recommender.version,
        method=summary["method"],
        k=summary["k"],
        silhouette=summary.get("silhouette"),
        rfm_comparison=summary.get("rfm_comparison") or {},
        segments=[_profile(recommender, i) for i in range(len(recommender.segments.profiles))],
        points=_points(recommender),
    )


@router.get(
    "/segments/{segment_id}", response_model=SegmentDetailResponse, summary="One segment's profile and points"
)
def get_segment(
    segment_id: Annotated[int, Path(ge=0, le=10_000)], recommender: RecommenderDep
) -> SegmentDetailResponse:
    if segment_id >= len(recommender.segments.profiles):
        raise HTTPException(
            404, f"unknown segment id {segment_id}; there are {len(recommender.segments.profiles)}"
        )
    return SegmentDetailResponse(
        model_version=recommender.version,
        segment=_profile(recommender, segment_id),
        points=_points(recommender, segment_id),
    )


@router.get("/model", response_model=ModelResponse, summary="The served bundle: version, metrics, counts")
def model_info(recommender: RecommenderDep) -> ModelResponse:
    manifest = recommender.bundle.manifest
    return ModelResponse(
        model_version=recommender.version,
        dataset_name=str(manifest.get("dataset_name", "")),
        created_at=manifest.get("created_at"),
        metrics={k: float(v) for k, v in recommender.bundle.metrics.items() if math.isfinite(float(v))},
        counts={k: int(v) for k, v in manifest.get("counts", {}).items()},
        index=manifest.get("index", {}),
        explainer=type(recommender.explainer).__name__,
    )
