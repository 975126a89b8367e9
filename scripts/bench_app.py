"""CPU per request inside the app: the serving routes driven by direct ASGI calls, no HTTP.

    .venv/bin/python scripts/bench_app.py --bundle artifacts/ml100k/bundles
    .venv/bin/python scripts/bench_app.py --bundle artifacts/ml100k/bundles --profile recs

`explainrec bench serve` measures what clients see over HTTP, with locust sharing the machine;
this splits out what the app itself costs per request, on one core, so that a change to the hot
path can be measured in seconds. Every request is computed (the response cache is off); each
scenario first asks once for every user it will use, so the numbers are the repeat path (shopper
state and session checks cached), except `explained_first`, which times each user's first
explained list (the counterfactual attribution through the user tower). The same bare FastAPI
endpoint as `bench serve`'s ceiling is timed the same way, and `similar` (a random item's
similar items, no credentials) and `item` (its details) as product pages ask for them.
`feedback` sends one write at a time (each its own commit); `feedback_x32` sends waves of 32 at
once, as `bench serve`'s 32 users do, so that they share commits. Prints one line per scenario
(µs per request, median of `--rounds`, and writes per commit for the writes); `--profile NAME`
adds cProfile's top functions.

    .venv/bin/python scripts/bench_app.py --bundle artifacts/ml100k/bundles --compare opentelemetry=true

`--compare NAME=VALUE` serves a second app with one setting changed (backend/settings.py) in the
same process and alternates the two apps' rounds: this VM's speed drifts by tens of percent
between runs, and a paired difference sees through that where two separate runs cannot.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if TYPE_CHECKING:
    from backend.settings import Settings

Headers = list[tuple[bytes, bytes]]
RECS = "/api/v1/recommendations"


async def call(app: Any, path: str, query: str, headers: Headers, body: bytes | None = None) -> int:
    """One GET (or, with a body, a JSON POST) through the whole ASGI stack; returns the status."""
    if body is not None:
        headers = [
            *headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET" if body is None else "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))

    await app(scope, receive, send)
    return status[0]


async def start(app: Any) -> None:
    """Run the app's lifespan start-up (bundle load, migrations)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    app.state.lifespan_task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise SystemExit(f"the app did not start: {message}")


def click(rng: random.Random, users: list[str], items: list[str]) -> bytes:
    """A feedback write's body, as `bench serve`'s feedback scenario sends it."""
    body = {
        "user_id": rng.choice(users),
        "item_id": rng.choice(items),
        "event": "click",
        "idempotency_key": f"{rng.getrandbits(64):016x}",
    }
    return json.dumps(body).encode()


async def timed(requests: Callable[[], Awaitable[int]], n: int, concurrency: int = 1) -> float:
    """Mean CPU µs per request of `n` requests sent in waves of `concurrency` at once (process
    time: the event loop and its threads)."""
    waves = max(1, n // concurrency)
    begin = time.process_time()
    for _ in range(waves):
        for status in await asyncio.gather(*(requests() for _ in range(concurrency))):
            if status not in (200, 201):
                raise SystemExit(f"a request answered {status}")
    return (time.process_time() - begin) / (waves * concurrency) * 1e6


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="explainrec-bench-app-", ignore_cleanup_errors=True) as tmp:
        await measure(args, Path(tmp))


@dataclass
class Target:
    """One app under test with the credentials its scenarios send."""

    app: Any
    by_key: Headers
    shoppers: list[Headers]


async def prepare(settings: Settings) -> Target:
    """Start an app, create a read+feedback key and 32 signed-in shoppers, and ask once for every
    user's explained list (state, session and explanation caches filled)."""
    from backend.app import create_app

    app = create_app(settings)
    await start(app)
    state = app.state.service
    if state.recommender is None:
        raise SystemExit(f"no bundle could be loaded from {settings.bundle_dir}: {state.last_load_error}")
    key, _ = state.store.create_api_key("bench", ["read", "feedback"])
    by_key: Headers = [(b"x-api-key", key.encode())]
    shoppers: list[Headers] = []
    users = [u for u in state.recommender.spec.user_ids if u]
    for user_id in users[:32]:
        user = state.store.create_user(user_id, {}, [], None)
        token, _, _ = state.store.create_session(user.pk, timedelta(days=1))
        shoppers.append([(b"cookie", f"explainrec_session={token}".encode())])
    for user_id in users:
        await call(app, RECS, f"user_id={user_id}&k=10&explain=true", by_key)
    for headers in shoppers:
        await call(app, RECS, "k=10&explain=true", headers)
    return Target(app, by_key, shoppers)


def scenarios_for(
    target: Target, users: list[str], items: list[str], rng: random.Random
) -> dict[str, Callable[[], Awaitable[int]]]:
    app, by_key, shoppers = target.app, target.by_key, target.shoppers

    def similar_path(item_id: str) -> str:
        return f"/api/v1/items/{quote(item_id, safe='')}/similar"

    scenarios: dict[str, Callable[[], Awaitable[int]]] = {
        "recs": lambda: call(app, RECS, f"user_id={rng.choice(users)}&k=10", by_key),
        "recs_explain": lambda: call(app, RECS, f"user_id={rng.choice(users)}&k=10&explain=true", by_key),
        "shopper": lambda: call(app, RECS, "k=10&explain=true", rng.choice(shoppers)),
        "similar": lambda: call(app, similar_path(rng.choice(items)), "k=10", []),
        "item": lambda: call(app, f"/api/v1/items/{quote(rng.choice(items), safe='')}", "", []),
        # Last: each write empties the caches the read scenarios above are measured with.
        "feedback": lambda: call(app, "/api/v1/feedback", "", by_key, click(rng, users, items)),
    }
    # 32 writes in flight, as `bench serve` sends them: they share commits (backend/feedbackwriter.py).
    scenarios["feedback_x32"] = scenarios["feedback"]
    return scenarios


def parse_setting(text: str) -> dict[str, Any]:
    """`name=value` -> {name: value}, the value parsed as JSON where it can be (true, 5, "x")."""
    from pydantic import ValidationError

    from backend.settings import Settings

    name, sep, raw = text.partition("=")
    if not sep or name not in Settings.model_fields:
        raise SystemExit(f"--compare takes NAME=VALUE with a Settings field name, not {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    try:
        Settings(**{name: value})
    except ValidationError as exc:
        raise SystemExit(f"--compare {text}: {exc.errors()[0]['msg']}") from None
    return {name: value}


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    from backend.app import create_app
    from backend.bench_serve import ceiling_app
    from backend.settings import Settings

    override = parse_setting(args.compare) if args.compare else None
    settings = Settings(
        workdir=workdir / "warm",
        bundle_dir=args.bundle,
        response_cache=False,
        rate_limit_feedback_per_minute=10**9,  # as `bench serve` runs its server
    )
    target = await prepare(settings)
    state = target.app.state.service
    users = [u for u in state.recommender.spec.user_ids if u]
    items = list(state.recommender.spec.item_ids)
    rng = random.Random(0)
    scenarios = scenarios_for(target, users, items, rng)
    write_scenarios = {name: scenarios.pop(name) for name in ("feedback", "feedback_x32")}
    ceiling = ceiling_app()
    # The ceiling before the writes: each write empties the caches the reads are measured with.
    scenarios = {**scenarios, "ceiling": lambda: call(ceiling, "/ceiling", "", []), **write_scenarios}
    other: dict[str, Callable[[], Awaitable[int]]] = {}
    if override is not None:
        changed = Settings(**{**settings.model_dump(), "workdir": workdir / "other", **override})
        other = scenarios_for(await prepare(changed), users, items, rng)
    concurrency = {"feedback_x32": 32}
    profile: pstats.Stats | None = None
    for name, requests in scenarios.items():
        writer = state.feedback_writer
        batches, writes = writer.batches, writer.writes
        n, waves = args.requests, concurrency.get(name, 1)
        rounds, paired = [], []
        for _ in range(args.rounds):
            # Compared rounds alternate with the baseline's, so that the VM's drift hits both.
            rounds.append(await timed(requests, n, waves))
            if name in other:
                paired.append(await timed(other[name], n, waves))
        line = f"{name:16s} {statistics.median(rounds):8.1f} µs/request"
        if writer.batches > batches:
            line += f"  ({(writer.writes - writes) / (writer.batches - batches):.1f} writes per commit)"
        if paired:
            gaps = [b - a for a, b in zip(rounds, paired, strict=True)]
            line += (
                f"  | {args.compare}: {statistics.median(paired):8.1f} µs/request,"
                f" paired change {statistics.median(gaps):+.1f} µs (median of {len(gaps)})"
            )
        print(line, flush=True)
        if name == args.profile:  # right away: later scenarios (feedback) change the state
            profiler = cProfile.Profile()
            profiler.enable()
            await timed(requests, n, waves)
            profiler.disable()
            profile = pstats.Stats(profiler)
    # Each user's first explained list, on a fresh app: attribution through the user tower.
    fresh = create_app(Settings(workdir=workdir / "fresh", bundle_dir=args.bundle, response_cache=False))
    await start(fresh)
    fresh_key, _ = fresh.state.service.store.create_api_key("bench", ["read"])
    firsts = iter(rng.sample(users, min(len(users), args.requests)))
    first_explained = await timed(
        lambda: call(
            fresh, RECS, f"user_id={next(firsts)}&k=10&explain=true", [(b"x-api-key", fresh_key.encode())]
        ),
        min(len(users), args.requests),
    )
    print(f"{'explained_first':16s} {first_explained:8.1f} µs/request", flush=True)
    if profile is not None:
        profile.sort_stats(args.sort).print_stats(40)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bundle", type=Path, required=True, help="bundles root (follows LATEST) or a version dir"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scenario; the median is shown")
    parser.add_argument(
        "--profile",
        choices=["recs", "recs_explain", "shopper", "similar", "item", "ceiling", "feedback", "feedback_x32"],
        help="cProfile this scenario",
    )
    parser.add_argument(
        "--sort", choices=["cumulative", "tottime"], default="cumulative", help="--profile's order"
    )
    parser.add_argument(
        "--compare",
        metavar="NAME=VALUE",
        help="also time a second app with this setting changed (e.g. opentelemetry=true), its rounds "
        "alternating with the first's, and print the paired change",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)
    asyncio.run(main(parse()))
