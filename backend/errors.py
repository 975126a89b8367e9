"""Exception handlers: every error leaves as JSON `{"detail": "<clear message>"}`.

Client mistakes are 4xx with a message naming the field; a database outage is 503 with
Retry-After; anything else is a 500 that is logged with its traceback but shows no internals.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from explainrec.errors import BundleError, ExplainrecError

log = logging.getLogger("explainrec.backend")


class ErrorResponse(BaseModel):
    detail: str


# Added to every router so the OpenAPI schema documents the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request (e.g. invalid JSON)."},
    401: {"model": ErrorResponse, "description": "Missing or invalid credentials."},
    403: {"model": ErrorResponse, "description": "Credentials do not allow this."},
    404: {"model": ErrorResponse, "description": "Unknown id."},
    413: {"model": ErrorResponse, "description": "Request body too large."},
    422: {"model": ErrorResponse, "description": "Invalid parameter or body field."},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded; see Retry-After."},
    503: {"model": ErrorResponse, "description": "Model or database unavailable; see Retry-After."},
}


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s/'\"`:,;()\[\]]+/)*[^\s/'\"`:,;()\[\]]*")


def without_paths(message: str, root: Path | None = None) -> str:
    """`message` with absolute filesystem paths cut down, for clients: paths under `root` become
    relative to it (e.g. "v2/manifest.json"), any other absolute path keeps only its last name."""
    if root is not None:
        for prefix in {str(root), str(root.resolve())}:
            message = message.replace(prefix.rstrip("/") + "/", "")
    return _ABSOLUTE_PATH.sub(lambda m: Path(m.group(0)).name or "/", message)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if not parts:
        return "request"
    where = {
        "query": "query parameter",
        "path": "path parameter",
        "body": "body field",
        "header": "header",
        "cookie": "cookie",
    }.get(parts[0])
    if where is None:
        return ".".join(parts)
    rest = ".".join(parts[1:])
    return f"{where} '{rest}'" if rest else ("request body" if parts[0] == "body" else where)


def validation_message(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:5])


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"detail": "request body is not valid JSON"}, status_code=400)
    # Drop echoed input: it may be huge or hold a password.
    return JSONResponse({"detail": validation_message(errors)}, status_code=422)


def _body_parse_message(cause: BaseException | None) -> str | None:
    """FastAPI turns any failure to parse a body into one generic 400; say which failure it was."""
    if isinstance(cause, RecursionError):
        return "request body JSON is nested too deeply to parse; flatten it (no field needs deep nesting)"
    if isinstance(cause, UnicodeDecodeError):
        return "request body is not valid UTF-8 text"
    if cause is not None:
        return "request body is not valid JSON"
    return None


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        detail = _body_parse_message(exc.__cause__) or detail
    return JSONResponse(
        {"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def _database_down(retry_after_s: int) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; nothing was written, retry later"},
            status_code=503,
            headers={"Retry-After": str(retry_after_s)},
        )

    return handler


async def _bundle(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"model bundle problem: {without_paths(str(exc))}"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _explainrec(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    db_down = _database_down(retry_after_s)
    for exc_type in (OperationalError, DBAPIError, PoolTimeoutError):
        app.add_exception_handler(exc_type, db_down)
    app.add_exception_handler(BundleError, _bundle)
    app.add_exception_handler(ExplainrecError, _explainrec)
    app.add_exception_handler(Exception, _unexpected)
