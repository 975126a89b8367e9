"""parse_json_body and openapi_json_body answer and document a body as FastAPI's own handling does."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from fastapi import FastAPI, Header, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field

from backend.errors import install_error_handlers
from backend.jsonbody import add_body_schemas, openapi_json_body, parse_json_body
from backend.routes.feedback import idempotency_header


class Inner(BaseModel):
    score: float = Field(ge=0)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=8)
    kind: Literal["a", "b"] = "a"
    note: str | None = Field(default=None, description="Optional.")
    inner: Inner | None = None


def body_app(declared: bool) -> TestClient:
    """The same route with FastAPI's declared body and header, or with parse_json_body."""
    app = FastAPI()
    install_error_handlers(app, retry_after_s=1)
    if declared:

        @app.post("/body")
        async def with_declared(
            body: Body,
            key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=60)] = None,
        ) -> dict[str, object]:
            return {"body": body.model_dump(), "key": key}

    else:

        @app.post("/body", openapi_extra=openapi_json_body(Body))
        async def with_parsed(request: Request) -> dict[str, object]:
            body = await parse_json_body(request, Body)
            return {"body": body.model_dump(), "key": idempotency_header(request)}

        add_body_schemas(app)
    return TestClient(app)


JSON = {"Content-Type": "application/json"}
CASES: list[tuple[bytes, dict[str, str]]] = [
    (b'{"name": "x"}', JSON),
    (b'{"name": "x", "kind": "b", "note": "n", "inner": {"score": 1}}', JSON),
    (b'{"name": "x"}', {}),  # no content type: not read as JSON (FastAPI's strict default)
    (b'{"name": "x"}', {"Content-Type": "application/vnd.api+json"}),
    (b'{"name": "x"}', {"Content-Type": "text/plain"}),
    (b"", JSON),
    (b"{not json", JSON),
    (b'{"name": "x",}', JSON),
    (b"\xff\xfe", JSON),
    (b'{"inner": ' * 5000 + b"{}" + b"}" * 5000, JSON),
    (b'{"name": ""}', JSON),
    (b'{"name": "x", "extra": 1}', JSON),
    (b'{"name": 7, "kind": "c"}', JSON),
    (b'{"name": "x", "inner": {"score": -1}}', JSON),
    (b"[1, 2]", JSON),
    (b"null", JSON),
    (b'{"name": "x"}', {**JSON, "Idempotency-Key": "k" * 61}),
    (b'{"name": "x"}', {**JSON, "Idempotency-Key": "retry-1"}),
]


@pytest.mark.parametrize(("content", "headers"), CASES)
def test_answers_as_a_declared_body_does(content: bytes, headers: dict[str, str]) -> None:
    declared = body_app(declared=True).post("/body", content=content, headers=headers)
    parsed = body_app(declared=False).post("/body", content=content, headers=headers)
    assert (parsed.status_code, parsed.json()) == (declared.status_code, declared.json())


def test_documents_the_body_as_fastapi_does() -> None:
    declared = body_app(declared=True).get("/openapi.json").json()
    parsed = body_app(declared=False).get("/openapi.json").json()
    assert (
        parsed["paths"]["/body"]["post"]["requestBody"] == declared["paths"]["/body"]["post"]["requestBody"]
    )
    # FastAPI's declared header adds its parameter and the HTTPValidationError models; the body
    # models themselves are documented identically.
    for name in ("Body", "Inner"):
        assert parsed["components"]["schemas"][name] == declared["components"]["schemas"][name]


def test_the_feedback_route_documents_what_fastapi_did(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/feedback"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/FeedbackRequest"} and operation["requestBody"]["required"]
    assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
    components = client.get("/openapi.json").json()["components"]["schemas"]
    assert "default" not in str(components["FeedbackRequest"]["properties"]["value"])
