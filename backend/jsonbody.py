"""A hot route's JSON body validated by one pydantic call, after the route has authenticated.

FastAPI resolves a declared body parameter on every request with generic machinery (content-type
sniffing, per-parameter annotation checks, error mapping); for POST /api/v1/feedback that, the
`Idempotency-Key` header parameter and the dependency around them were a third of the request's
CPU (`scripts/bench_app.py`, feedback). A hot route instead reads its body with
`parse_json_body` and documents it with `openapi_json_body`, and `add_body_schemas` puts the
models into the OpenAPI components, so the document reads as FastAPI writes it. Errors are
FastAPI's own: invalid JSON is a `json_invalid` RequestValidationError, a body that cannot be
parsed at all (too deeply nested, not UTF-8) the same 400 HTTPException, a missing body or a bad
field a RequestValidationError at `body.<field>` (backend/errors.py words them all).

    @router.post("", openapi_extra=openapi_json_body(Body))
    async def route(request: Request) -> Response:
        caller = await get_serving(request)          # 401 before anything is parsed
        body = await parse_json_body(request, Body)
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Schema
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)

# The models documented by `openapi_json_body`, for `add_body_schemas`.
_BODY_MODELS: dict[str, type[BaseModel]] = {}


async def parse_json_body(request: Request, model: type[Model]) -> Model:
    """`model` from the request's JSON body (required); errors as FastAPI raises them."""
    raw = await request.body()
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    data: Any = raw  # not declared JSON: validated as bytes, which no model accepts
    if _declares_json(request.headers.get("content-type")):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ]
            ) from exc
        except Exception as exc:  # RecursionError, UnicodeDecodeError: the cause names which
            raise HTTPException(400, "There was an error parsing the body") from exc
    try:
        return model.model_validate(data, from_attributes=True)  # as FastAPI validates a body
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _declares_json(content_type: str | None) -> bool:
    """FastAPI's rule (strict_content_type, its default): application/json or application/*+json.
    A body without a Content-Type is not read as JSON, so a cross-site form cannot post one."""
    if not content_type:
        return False
    if content_type == "application/json":  # nearly every request: skip the header parser
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def openapi_json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the required JSON body, as FastAPI would."""
    _BODY_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
            "required": True,
        }
    }


def add_body_schemas(app: FastAPI) -> None:
    """Make `app.openapi()` list the models of `openapi_json_body` among its component schemas
    (FastAPI only collects the models of declared parameters)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in sorted(_referenced_bodies(schema)):
            model = _BODY_MODELS[name]
            if name not in components:
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for key, value in {**definition.pop("$defs", {}), name: definition}.items():
                    # As FastAPI finishes its document: through the OpenAPI models, no nulls.
                    components[key] = jsonable_encoder(Schema(**value), by_alias=True, exclude_none=True)
        schema["components"]["schemas"] = dict(sorted(components.items()))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _referenced_bodies(schema: dict[str, Any]) -> set[str]:
    """Names of the `openapi_json_body` models the document's operations refer to."""
    names = set()
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            name = content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            if name in _BODY_MODELS:
                names.add(name)
    return names
