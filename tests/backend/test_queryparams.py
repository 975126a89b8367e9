"""One-model query parsing must behave and document itself exactly like FastAPI's own parameters."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from backend.queryparams import openapi_query, parse_query


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, min_length=1, max_length=8, description="Who.")
    k: int = Field(10, ge=1, le=100)
    flag: bool = False
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    tags: list[str] | None = Field(None, max_length=3, description="Any of these.")


def twin_apps() -> TestClient:
    """/model parses with `parse_query`; /fastapi declares the same parameters the FastAPI way."""
    app = FastAPI()

    @app.get("/model", openapi_extra=openapi_query(Params))
    async def by_model(request: Request) -> dict[str, Any]:
        return parse_query(request, Params).model_dump()

    @app.get("/fastapi")
    async def by_fastapi(
        name: Annotated[str | None, Query(min_length=1, max_length=8, description="Who.")] = None,
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        flag: bool = False,
        price: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
        tags: Annotated[list[str] | None, Query(max_length=3, description="Any of these.")] = None,
    ) -> dict[str, Any]:
        return {"name": name, "k": k, "flag": flag, "price": price, "tags": tags}

    return TestClient(app)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "name=ann&k=3&flag=true&price=2.5&tags=a&tags=b",
        "k=3&k=4",  # a repeated scalar: the last one wins
        "unknown=1&flag=on",
        "k=0",
        "k=abc",
        "k=1.5",
        "name=",
        "name=far-too-long",
        "price=-1",
        "price=nan",
        "price=inf",
        "flag=maybe",
        "tags=a&tags=b&tags=c&tags=d",
    ],
)
def test_parse_query_answers_like_fastapi(query: str) -> None:
    client = twin_apps()
    ours, theirs = client.get(f"/model?{query}"), client.get(f"/fastapi?{query}")
    assert ours.status_code == theirs.status_code
    assert ours.json() == theirs.json()


def test_openapi_query_documents_what_fastapi_would() -> None:
    paths = twin_apps().get("/openapi.json").json()["paths"]
    ours = paths["/model"]["get"]["parameters"]
    theirs = paths["/fastapi"]["get"]["parameters"]
    assert ours == theirs and [p["name"] for p in ours] == ["name", "k", "flag", "price", "tags"]


def test_a_bad_value_names_the_query_parameter() -> None:
    response = twin_apps().get("/model?k=0")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "k"]


def test_nested_models_cannot_be_query_parameters() -> None:
    class Inner(BaseModel):
        x: int

    class Nested(BaseModel):
        inner: Inner

    with pytest.raises(TypeError, match="plain values"):
        openapi_query(Nested)


def test_the_recommendations_route_keeps_its_parameters_and_errors(client: TestClient) -> None:
    key, _ = client.app.state.service.store.create_api_key("t", ["read"])  # type: ignore[attr-defined]
    headers = {"X-API-Key": key}
    params = client.get("/openapi.json").json()["paths"]["/api/v1/recommendations"]["get"]["parameters"]
    assert [p["name"] for p in params] == [
        "user_id",
        "k",
        "explain",
        "exclude_seen",
        "category",
        "min_price",
        "max_price",
        "exclude",
    ]
    bad = client.get("/api/v1/recommendations?user_id=u00&k=0", headers=headers)
    assert bad.status_code == 422 and "query parameter 'k'" in bad.json()["detail"]
    picks = client.get("/api/v1/recommendations?user_id=u00&k=3&exclude=i01,i02&exclude=i03", headers=headers)
    assert picks.status_code == 200
    ids = [item["item_id"] for item in picks.json()["items"]]
    assert len(ids) == 3 and not {"i01", "i02", "i03"} & set(ids)
