"""A route whose endpoint takes the Request and returns the Response: FastAPI's handler skipped.

The hottest routes (GET /api/v1/recommendations, POST /api/v1/feedback and the profile form's
POST /api/v1/recommendations/cold-start) already parse their own query string and body
(backend/queryparams.py, backend/jsonbody.py) and build their own Response. FastAPI still
wrapped them in its generic request handler: dependency solving for the `request` parameter,
the body and content-type checks (again, for a route that reads its own), a look at the return
value. `DirectRoute` hands Starlette the endpoint itself instead (FastAPI's documented
hook for this, `APIRoute.get_route_handler`); routing, the exception handlers, the middlewares
and the OpenAPI entry (response model, `openapi_extra`) stay FastAPI's.

    async def route(request: Request) -> Response: ...

    # add_api_route, not the decorators: only it takes route_class_override.
    router.add_api_route("", route, methods=["GET"], route_class_override=DirectRoute, response_model=...)

It accepts only such endpoints, so nothing FastAPI would have done for a declared parameter or a
dependency can be skipped by mistake: anything else fails when the route is created.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        _check_direct(endpoint)
        super().__init__(path, endpoint, **kwargs)
        if self.dependant.dependencies:
            raise TypeError(
                f"{endpoint.__qualname__}: a DirectRoute cannot have dependencies "
                "(its endpoint resolves what it needs from the request)"
            )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint  # type: ignore[no-any-return]  # checked by _check_direct


def _check_direct(endpoint: Callable[..., Any]) -> None:
    """An `async def endpoint(request: Request) -> Response`, or TypeError."""
    name = getattr(endpoint, "__qualname__", repr(endpoint))
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{name}: a DirectRoute endpoint must be `async def`")
    parameters = list(inspect.signature(endpoint).parameters.values())
    hints = get_type_hints(endpoint)
    if len(parameters) != 1 or hints.get(parameters[0].name) is not Request:
        raise TypeError(f"{name}: a DirectRoute endpoint takes exactly one parameter, the Request")
    returned = hints.get("return")
    if not (isinstance(returned, type) and issubclass(returned, Response)):
        raise TypeError(f"{name}: a DirectRoute endpoint must be annotated to return a Response")
