"""A route's query string validated by one pydantic model, in one call.

FastAPI re-inspects every declared query parameter's annotation on every request (about 6 µs a
parameter with fastapi 0.165): for the 8 parameters of GET /api/v1/recommendations that was a
fifth of the request's CPU. A hot route instead declares its parameters as a model, reads them
with `parse_query` (one pydantic validation, ~2 µs) and documents them with `openapi_query`.
Behaviour matches FastAPI's: unknown parameters are ignored, a repeated scalar keeps its last
value, list fields collect every occurrence, and a bad value is the same RequestValidationError
(a 422 naming `query.<name>`).

    class Params(BaseModel):
        k: int = Field(10, ge=1, le=100)

    @router.get("", openapi_extra=openapi_query(Params))
    async def route(request: Request) -> Response:
        params = parse_query(request, Params)
"""

from __future__ import annotations

import functools
import typing
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def parse_query(request: Request, model: type[Model]) -> Model:
    """`model` from the request's query string; RequestValidationError (422) when it does not fit."""
    lists = _list_fields(model)
    params = request.query_params
    data = {key: params.getlist(key) if key in lists else value for key, value in params.items()}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in errors]) from None


def openapi_query(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting each field of `model` as a query parameter, as FastAPI would."""
    schema = model.model_json_schema()
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: query parameters must be plain values or lists of them")
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = dict(field_schema)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in field_schema:
            parameter["description"] = field_schema["description"]
        parameter["schema"] = field_schema
        parameters.append(parameter)
    return {"parameters": parameters}


@functools.cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields whose annotation is a list (or list | None): every occurrence of the key counts."""
    return frozenset(
        name
        for name, field in model.model_fields.items()
        if any(
            typing.get_origin(arg) in (list, tuple, set, frozenset)
            for arg in (field.annotation, *typing.get_args(field.annotation))
        )
    )
