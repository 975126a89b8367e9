"""What routing costs a request: the app's flat route table against the same routers included.

    .venv/bin/python scripts/bench_routing.py
    .venv/bin/python scripts/bench_routing.py --requests 1000 --rounds 15

`create_app` puts the API's routes directly on the app router, busiest first
(backend/app.py). FastAPI's `include_router` (0.165) keeps each router nested instead, matches
a request against the router once to choose it and again to serve it, and tried the four
documentation routes before any of them. This builds both layouts of the same app in one
process (the nested one as `create_app` built it before: documentation routes, then
`include_router` for each of `API_ROUTERS`, then the frontend) and sends each the same requests
through the whole ASGI stack, without credentials: every API route answers its 401 (or 503:
no bundle is loaded), so the two layouts do the same work but for the routing. Rounds alternate
between the layouts, so this VM's drift hits both; one line per path: the median µs per
request of each layout and the median paired change. Rerun it after a FastAPI upgrade: if
nesting stops costing, `create_app` can go back to `include_router`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_app import call  # one request through the whole ASGI stack

# (path, body): a GET without a body, a POST with one. The hottest routes first, as they are
# matched; then routes further down the table.
REQUESTS: tuple[tuple[str, bytes | None], ...] = (
    ("/api/v1/recommendations", None),
    ("/api/v1/feedback", b"{}"),
    ("/api/v1/items/i1/similar", None),
    ("/api/v1/auth/me", None),
)


def nested_app(workdir: Path) -> Any:
    """The app as `create_app` built it with `include_router`: docs routes, routers, frontend."""
    from fastapi.routing import APIRoute

    from backend.app import API_ROUTERS, create_app
    from backend.settings import Settings

    app = create_app(Settings(workdir=workdir))
    others = [route for route in app.router.routes if not isinstance(route, APIRoute)]
    frontend = [route for route in others if getattr(route, "path", None) == ""]
    app.router.routes[:] = [route for route in others if route not in frontend]
    for router in API_ROUTERS:
        app.include_router(router)
    app.router.routes.extend(frontend)
    return app


async def per_request_us(app: Any, path: str, body: bytes | None, n: int) -> float:
    begin = time.perf_counter()
    for _ in range(n):
        await call(app, path, "", [], body)
    return (time.perf_counter() - begin) / n * 1e6


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    from backend.app import create_app
    from backend.settings import Settings

    flat = create_app(Settings(workdir=workdir / "flat"))
    nested = nested_app(workdir / "nested")
    for path, body in REQUESTS:
        method = "GET" if body is None else "POST"
        statuses = {await call(app, path, "", [], body) for app in (flat, nested)}
        if len(statuses) != 1:
            raise SystemExit(f"{method} {path}: the layouts answered differently: {sorted(statuses)}")
        nested_us, flat_us = [], []
        for _ in range(args.rounds):
            nested_us.append(await per_request_us(nested, path, body, args.requests))
            flat_us.append(await per_request_us(flat, path, body, args.requests))
        change = statistics.median(f - n for f, n in zip(flat_us, nested_us, strict=True))
        print(
            f"{method:4s} {path:28s} ({statuses.pop()}) nested {statistics.median(nested_us):7.1f}"
            f"  flat {statistics.median(flat_us):7.1f} µs/request, paired change {change:+.1f} µs",
            flush=True,
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per layout and path (default 15)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="explainrec-bench-routing-", ignore_cleanup_errors=True) as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
