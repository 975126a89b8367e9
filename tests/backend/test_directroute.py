"""DirectRoute: the endpoint is the handler; FastAPI's routing, errors and OpenAPI stay as they were."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.testclient import TestClient
from pydantic import BaseModel

from backend.directroute import DirectRoute
from backend.routes import feedback, items, recommendations, users


class Greeting(BaseModel):
    text: str


async def greet(request: Request) -> Response:
    name = request.query_params.get("name")
    if not name:
        raise HTTPException(422, "name is required")
    return Response(Greeting(text=f"hello {name}").model_dump_json(), media_type="application/json")


def app_with(route_class: type[Any] | None) -> FastAPI:
    router = APIRouter(prefix="/greet")
    if route_class is None:  # the same endpoint as FastAPI handles it
        router.add_api_route("", greet, methods=["GET"], response_model=Greeting, summary="Greet")
    else:
        router.add_api_route(
            "",
            greet,
            methods=["GET"],
            response_model=Greeting,
            summary="Greet",
            route_class_override=route_class,
        )
    app = FastAPI()
    app.include_router(router)
    return app


def test_a_direct_route_answers_and_documents_as_fastapi_would() -> None:
    direct, declared = TestClient(app_with(DirectRoute)), TestClient(app_with(None))
    for query in ("?name=ada", "", "?name="):
        got, want = direct.get("/greet" + query), declared.get("/greet" + query)
        assert (got.status_code, got.json(), got.headers["content-type"]) == (
            want.status_code,
            want.json(),
            want.headers["content-type"],
        )
    assert direct.get("/greet?name=ada").json() == {"text": "hello ada"}
    assert direct.post("/greet").status_code == 405  # routing is still FastAPI's
    assert direct.app.openapi() == declared.app.openapi()  # type: ignore[attr-defined]


def test_the_endpoint_is_handed_to_starlette_as_it_is() -> None:
    route = DirectRoute("/x", greet, methods=["GET"])
    assert route.get_route_handler() is greet


async def takes_a_query(request: Request, name: str) -> Response:
    return Response(name)


def sync_endpoint(request: Request) -> Response:
    return Response("")


async def returns_a_dict(request: Request) -> dict[str, str]:
    return {}


async def no_request() -> Response:
    return Response("")


@pytest.mark.parametrize(
    ("endpoint", "complaint"),
    [
        (takes_a_query, "exactly one parameter"),
        (no_request, "exactly one parameter"),
        (sync_endpoint, "async def"),
        (returns_a_dict, "return a Response"),
    ],
)
def test_only_an_async_request_to_response_endpoint_is_accepted(endpoint: Any, complaint: str) -> None:
    with pytest.raises(TypeError, match=complaint):
        DirectRoute("/x", endpoint, methods=["GET"])


def test_declared_dependencies_are_refused_not_skipped() -> None:
    def needs_something() -> None:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="dependencies"):
        DirectRoute("/x", greet, methods=["GET"], dependencies=[Depends(needs_something)])


def test_the_service_serves_its_hottest_routes_directly() -> None:
    direct = {
        (route.path, method)
        for module in (feedback, recommendations, items, users)
        for route in module.router.routes
        if isinstance(route, DirectRoute)
        for method in route.methods or ()
    }
    assert direct == {
        ("/api/v1/recommendations", "GET"),
        ("/api/v1/recommendations/cold-start", "POST"),
        ("/api/v1/feedback", "POST"),
    }
