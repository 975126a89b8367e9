"""`explainrec bench serve`: load-test the real server against the framework ceiling.

    explainrec bench serve --bundle artifacts/bundles --concurrency 32 --duration 20 --json OUT.json
    explainrec bench serve --bundle DIR --profile recs --profile-out artifacts/bench/recs.txt

Starts `explainrec serve` (uvicorn, `--workers` processes) on a throwaway SQLite database, and,
served the same way, a bare FastAPI app whose one endpoint returns a constant JSON body as large
as a top-10 response (the ceiling; FastAPI's per-request telemetry check off, as in the service
by default). Each scenario is driven for `--duration` seconds by locust, headless, in its own
process, with `--concurrency` users that send the next request as soon as the last one
answers. Output (issue 9):

    {"concurrency": 32, "scenarios": {"recs": {"rps", "p50_ms", "p95_ms", "p99_ms", "errors"}, ...},
     "ceiling": {...same...}, "ratio_recs_to_ceiling": 0.71,
     "feedback_to_next_recs": {"p50_ms", "p95_ms", "n"},   # unloaded, measured first
     "targets": {"recs_ratio_to_ceiling" | "recs_p99_ms" | "feedback_p99_ms" | "errors":
                 {"value", "target", "met"}}}                # issue 9's, judged on this run

Scenarios: `recs` (API key, random known users, top-10), `recs_explain` (the same with template
explanations), `cold_start` (profile form + 2 liked items), `similar` (items like an item), `item`
(an item's details, the other product-page call), `shopper` (one signed-in session per locust
user, each asking for its own explained top-10 as the web UI does), `feedback` (API-key writes to
SQLite) and `mixed` (9 top-10 reads to 1 write, each write dropping that shopper's stored
answers). Repeated reads of recommendations are answered from memory by default
(backend/readcache.py), so after each user's first request the recs and shopper scenarios
measure that path; `--no-response-cache` serves with it off, so that every request is computed.
`--profile SCENARIO` also samples the server worker with py-spy during that scenario and
prints where its time goes. This module doubles as the locustfile: the user classes below are
defined only inside the locust process (EXPLAINREC_BENCH_LOCUST=1), so importing it for the
CLI does not pull in locust or gevent.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import itertools
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from explainrec.cli_options import print_json_report
from explainrec.errors import ConfigError
from explainrec.provenance import environment

SCENARIOS = {  # scenario name -> locust user class defined below
    "recs": "RecsUser",
    "recs_explain": "RecsExplainUser",
    "cold_start": "ColdStartUser",
    "similar": "SimilarUser",
    "item": "ItemUser",  # a product page's item details
    "shopper": "ShopperUser",  # signed-in shoppers (session cookie), their own explained top-10
    "feedback": "FeedbackUser",  # after the reads: its writes would otherwise change later recommendations
    "mixed": "MixedUser",  # 9 top-10 reads to 1 feedback write: each drops that shopper's answers
}
CEILING_CLASS = "CeilingUser"
LOCUST_ENV, IDS_ENV, KEY_ENV, CEILING_BYTES_ENV = (
    "EXPLAINREC_BENCH_LOCUST",
    "EXPLAINREC_BENCH_IDS",
    "EXPLAINREC_BENCH_KEY",
    "EXPLAINREC_BENCH_CEILING_BYTES",
)
STAT_KEYS = ("rps", "p50_ms", "p95_ms", "p99_ms", "errors")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle", type=Path, required=True, help="bundles root (follows LATEST) or a version dir"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="simultaneous locust users (default 32)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per scenario (default 20)")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes, both servers (default 1)"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (the ceiling always runs)",
    )
    parser.add_argument(
        "--no-response-cache",
        action="store_true",
        help="serve with EXPLAINREC_RESPONSE_CACHE=false: every recommendation is computed",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument(
        "--profile",
        choices=sorted(SCENARIOS),
        default=None,
        help="sample the server with py-spy during this scenario",
    )
    parser.add_argument(
        "--profile-out",
        type=Path,
        default=None,
        help="where the profile summary goes (default: next to --json, or stdout only)",
    )


# -- processes --


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server in its own process group (uvicorn workers included), logging to a file."""

    def __init__(
        self, command: list[str], env: dict[str, str], port: int, log_path: Path, ready_path: str = "/readyz"
    ) -> None:
        self.command, self.env, self.port, self.log_path, self.ready_path = (
            command,
            env,
            port,
            log_path,
            ready_path,
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"server exited with {self.process.returncode}; log: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ConfigError(f"server not ready on {self.url} after {timeout_s:.0f} s; log: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The process group's members that serve requests (the uvicorn workers, or the one process)."""
        assert self.process is not None
        found = subprocess.run(
            ["ps", "-o", "pid=", "-g", str(self.process.pid)], capture_output=True, text=True
        )
        pids = [int(p) for p in found.stdout.split()]
        children = [p for p in pids if p != self.process.pid]
        # With --workers > 1 the parent only supervises; uvicorn also starts a resource tracker child.
        return [
            p for p in children if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()
        ] or [self.process.pid]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.kill(signal.SIGTERM)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text("utf-8", "replace")[-chars:] if self.log_path.is_file() else ""


def server_env(bundle: Path, workdir: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "EXPLAINREC_BUNDLE_DIR": str(bundle.resolve()),
        "EXPLAINREC_WORKDIR": str(workdir),
        "EXPLAINREC_RATE_LIMIT_FEEDBACK_PER_MINUTE": "1000000000",
        "EXPLAINREC_RATE_LIMIT_AUTH_PER_MINUTE": "1000000000",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("EXPLAINREC_DATABASE_URL", None)
    env.update(extra)
    return env


def explainrec_server(
    bundle: Path, workdir: Path, workers: int, port: int | None = None, **extra_env: str
) -> ServerProcess:
    """`explainrec serve` on a loopback port with an SQLite file in `workdir` (not started yet)."""
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "explainrec.cli",
        "serve",
        "--bundle",
        str(bundle.resolve()),
        "--workdir",
        str(workdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return ServerProcess(
        command, server_env(bundle, workdir, **extra_env), port, workdir / f"server-{port}.log"
    )


def ceiling_app() -> Any:
    """A bare FastAPI app answering GET /ceiling with a constant JSON body of the configured size."""
    from fastapi import FastAPI, Response

    from backend.settings import TELEMETRY_OFF

    size = int(os.environ.get(CEILING_BYTES_ENV, "2048"))
    filler = max(0, size - len('{"pad":""}'))
    body = json.dumps({"pad": "x" * filler}, separators=(",", ":")).encode()
    app = FastAPI(telemetry=TELEMETRY_OFF)  # as the service runs by default

    # async: the cheapest way FastAPI can answer, so the ratio is against the real ceiling.
    @app.get("/ceiling")
    async def ceiling() -> Response:
        return Response(body, media_type="application/json")

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def ceiling_server(workdir: Path, workers: int, body_bytes: int, log_level: str) -> ServerProcess:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "backend.bench_serve:ceiling_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        log_level,
        "--proxy-headers",
    ]
    # Served the same way as `explainrec serve`: access log only when that has it on.
    if os.environ.get("EXPLAINREC_ACCESS_LOG", "false").lower() not in ("1", "true", "yes", "on"):
        command.append("--no-access-log")
    env = {**os.environ, CEILING_BYTES_ENV: str(body_bytes), "OMP_NUM_THREADS": "1"}
    return ServerProcess(command, env, port, workdir / "ceiling.log")


# -- CPU accounting: locust shares the machine's cores with the server --


def _stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds in a /proc stat file (a process's or a thread's); 0 if unreadable."""
    try:
        fields = stat.read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds so far of these processes (from /proc; 0 where unreadable)."""
    return sum(_stat_cpu_seconds(Path(f"/proc/{pid}/stat")) for pid in pids)


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of one process's main thread: in a uvicorn worker, the
    event loop's (0 where unreadable)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(
    run_scenario: Callable[[], dict[str, float | int]], server: ServerProcess, duration: int
) -> tuple[dict[str, float | int], dict[str, float], float]:
    """Run one locust scenario; also return the CPU cores the load generator and the server used
    on average over it (wall-clock share, locust's start included), the busiest worker's event
    loop (its main thread: the rest of the server's CPU ran in threads beside it, such as the
    feedback commits), and the server's CPU µs per request: all its CPU over the run over the
    requests locust counted (`duration` s at the measured rate; the ramp-up second's requests are
    not counted, a few % too high)."""
    # With one worker uvicorn serves from the parent itself: count each process once.
    pids = sorted({server.process.pid, *server.worker_pids()}) if server.process else []
    workers = server.worker_pids() if server.process else []
    started = time.monotonic()
    locust_before, server_before = children_cpu_seconds(), process_cpu_seconds(pids)
    workers_before = [(process_cpu_seconds([pid]), main_thread_cpu_seconds(pid)) for pid in workers]
    stats = run_scenario()
    wall = max(time.monotonic() - started, 1e-9)
    server_seconds = process_cpu_seconds(pids) - server_before
    # The kernel rounds a process's and a thread's times to clock ticks separately, so a busy
    # main thread can read a tick or two above its whole process: no thread uses more than it.
    loops = [
        min(main_thread_cpu_seconds(pid) - loop_before, process_cpu_seconds([pid]) - process_before)
        for pid, (process_before, loop_before) in zip(workers, workers_before, strict=True)
    ]
    cores = {
        "load_generator": round((children_cpu_seconds() - locust_before) / wall, 2),
        "server": round(server_seconds / wall, 2),
        "event_loop": round(max(loops, default=0.0) / wall, 2),
    }
    requests = float(stats["rps"]) * duration
    return stats, cores, round(1e6 * server_seconds / requests, 1) if requests > 0 else 0.0


# Near-full use that marks a bottleneck: locust runs in one process, so one core is its limit;
# a uvicorn worker's event loop is one thread, so about one core per worker is the server's; and
# both share the machine's cores.
LOCUST_SATURATED_CORES = 0.9
SERVER_SATURATED_CORES_PER_WORKER = 0.85
MACHINE_SATURATED_SHARE = 0.85


def saturated(cores: dict[str, float], workers: int, cpus: int) -> list[str]:
    """What used (nearly) all it can during a scenario: `load_generator`, `server`, `machine`
    (the two together on all `cpus` cores: with several workers on a small machine the server
    runs out of cores before each worker fills its own), any of them, or none. A closed-loop
    throughput says little about the server when only locust is here."""
    full = []
    if cores["load_generator"] >= LOCUST_SATURATED_CORES:
        full.append("load_generator")
    if cores["server"] >= SERVER_SATURATED_CORES_PER_WORKER * workers:
        full.append("server")
    if cores["load_generator"] + cores["server"] >= MACHINE_SATURATED_SHARE * cpus:
        full.append("machine")
    return full


# Issue 9's targets, stated for the default run (--concurrency 32, the ML-100K bundle, a 2-core
# machine): name -> (the scenario it needs, its statistic or "ratio" for recs over the ceiling,
# comparison, bound).
TARGETS: dict[str, tuple[str, str, str, float]] = {
    "recs_ratio_to_ceiling": ("recs", "ratio", ">=", 0.6),
    "recs_p99_ms": ("recs", "p99_ms", "<=", 25.0),
    "feedback_p99_ms": ("feedback", "p99_ms", "<=", 20.0),
}


def target_checks(
    results: dict[str, dict[str, float | int]], ceiling: dict[str, float | int], ratio: float
) -> dict[str, dict[str, Any]]:
    """Each target of issue 9 whose scenario ran: {"value", "target", "met"}; `errors` counts
    every scenario's and the ceiling's failed requests (target 0)."""
    checks: dict[str, dict[str, Any]] = {}
    for name, (scenario, statistic, comparison, bound) in TARGETS.items():
        if scenario not in results:
            continue
        value = float(ratio if statistic == "ratio" else results[scenario][statistic])
        met = value >= bound if comparison == ">=" else value <= bound
        checks[name] = {"value": value, "target": f"{comparison} {bound:g}", "met": met}
    errors = sum(int(stats["errors"]) for stats in [*results.values(), ceiling])
    checks["errors"] = {"value": errors, "target": "== 0", "met": errors == 0}
    return checks


# -- load generation --


def run_locust(
    user_class: str, host: str, concurrency: int, duration: int, workdir: Path, env: dict[str, str]
) -> dict[str, float | int]:
    prefix = workdir / f"locust-{user_class}"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(Path(__file__).resolve()),
        "--headless",
        "-u",
        str(concurrency),
        "-r",
        str(concurrency),
        "-t",
        f"{duration}s",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--only-summary",
        "--reset-stats",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
        user_class,
    ]
    done = subprocess.run(
        command,
        env={**os.environ, **env, LOCUST_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        raise ConfigError(f"locust wrote no statistics (exit {done.returncode}): {done.stderr[-2000:]}")
    return parse_locust_stats(stats)


def mixed_parts(workdir: Path) -> dict[str, dict[str, float | int]]:
    """The mixed scenario's reads and writes apart (its requests are named by kind)."""
    stats = workdir / f"locust-{SCENARIOS['mixed']}_stats.csv"
    return {kind: parse_locust_stats(stats, f"mixed_{kind}") for kind in ("read", "write")}


def parse_locust_stats(path: Path, name: str = "Aggregated") -> dict[str, float | int]:
    """One row of locust's `*_stats.csv` (by default all requests together) in the issue-9 shape."""
    with path.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    row = rows.get(name)
    if row is None or int(row["Request Count"]) == 0:
        what = "requests" if name == "Aggregated" else f"{name!r} requests"
        raise ConfigError(f"locust recorded no {what} in {path}")

    def ms(column: str) -> float:
        return float(row[column]) if row[column] not in ("", "N/A") else float("nan")

    return {
        "rps": round(float(row["Requests/s"]), 1),
        "p50_ms": ms("50%"),
        "p95_ms": ms("95%"),
        "p99_ms": ms("99%"),
        "errors": int(row["Failure Count"]),
    }


# -- profiling --


def start_profiler(pid: int, duration: int, workdir: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` at 200 Hz into collapsed stacks, for most of one scenario."""
    command = [
        py_spy() or "py-spy",
        "record",
        "--format",
        "raw",
        "--rate",
        "200",
        "--duration",
        str(max(1, duration - 2)),
        "--nonblocking",
        "--output",
        str(workdir / "profile.collapsed"),
        "--pid",
        str(pid),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def py_spy() -> str | None:
    """py-spy on PATH, or the one installed next to this Python (a venv not on PATH)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.is_file() else None)


def finish_profile(profiler: subprocess.Popen[bytes], workdir: Path, out: Path | None) -> None:
    _, errors = profiler.communicate(timeout=120)
    raw = workdir / "profile.collapsed"
    summary = summarize_profile(raw) if raw.is_file() else f"py-spy failed: {errors.decode(errors='replace')}"
    print(summary, flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(summary + "\n", "utf-8")
        if raw.is_file():  # the stacks themselves, for a flame graph (flamegraph.pl, speedscope)
            shutil.copyfile(raw, out.with_suffix(".collapsed"))


# Leaf frames of threads that wait for work (idle thread-pool threads, the event loop polling).
IDLE_LEAVES = ("Condition.wait ", "Event.wait ", "Queue.get ", "Runner.run ", "select ", "_run_once ")
# Where a busy sample's time goes, by the file of the innermost frame.
AREAS = (
    ("database (sqlalchemy + sqlite)", ("sqlalchemy/", "sqlite3/", "backend/db/")),
    ("vector math (numpy/faiss/torch)", ("numpy/", "faiss/", "torch/")),
    ("validation + JSON (pydantic/json)", ("pydantic", "json/", "fastapi/encoders", "orjson")),
    ("framework (fastapi/starlette/anyio)", ("fastapi/", "starlette/", "anyio/")),
    ("server + HTTP (uvicorn/httptools)", ("uvicorn/", "httptools", "asyncio/")),
    ("logging", ("logging/",)),
    ("threading hand-off", ("threading.py", "queue.py", "concurrent/")),
    ("our code (backend/embeddings/explain)", ("backend/", "embeddings/", "explain/")),
)


def _area(frame: str) -> str:
    return next((name for name, needles in AREAS if any(n in frame for n in needles)), "other")


def summarize_profile(collapsed: Path, top: int = 20) -> str:
    """Where the server's busy time goes: py-spy collapsed stacks, idle waits left out.

    Shares are of busy thread-samples; a function counts once per stack (inclusive)."""
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    busy = idle = 0
    for line in collapsed.read_text("utf-8", "replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames or not count_text.isdigit():
            continue
        count = int(count_text)
        if frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        busy += count
        areas[_area(frames[-1])] += count
        leaves[frames[-1]] += count
        for frame in set(frames):
            if any(
                own in frame for own in ("backend/", "embeddings/", "explain/", "sqlalchemy/orm/session.py")
            ):
                inclusive[frame] += count
    if busy == 0:
        return "no busy samples"
    lines = [f"{busy} busy thread-samples ({idle} idle left out); self time by area:"]
    lines += [f"{100 * n / busy:5.1f}%  {name}" for name, n in areas.most_common()]
    lines += ["", "inclusive share of busy samples, our functions (and ORM sessions):"]
    lines += [f"{100 * n / busy:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "self time, top innermost frames:"]
    lines += [f"{100 * n / busy:5.1f}%  {frame}" for frame, n in leaves.most_common(top)]
    return "\n".join(lines)


# -- the command --


def _ids(bundle: Path) -> dict[str, list[str]]:
    from embeddings.bundle import resolve_bundle_dir
    from embeddings.features import FeatureSpec

    spec = FeatureSpec.from_json((resolve_bundle_dir(bundle) / "feature_spec.json").read_text("utf-8"))
    return {"users": list(spec.user_ids), "items": list(spec.item_ids), "categories": list(spec.categories)}


def seed_database(workdir: Path, shoppers: list[str]) -> tuple[str, list[str]]:
    """In the SQLite database of `workdir` (migrated first): a read+feedback+admin API key, and
    a signed-in session for each of `shoppers` (as the demo sign-in makes them); returns the
    key and one `Cookie` header value per shopper."""
    from datetime import timedelta

    from backend.db.engine import make_engine, make_session_factory, upgrade_database
    from backend.deps import SESSION_COOKIE
    from backend.store import Store

    engine = make_engine(f"sqlite:///{(workdir / 'explainrec.db').resolve()}")
    upgrade_database(engine)
    store = Store(make_session_factory(engine))
    key, _ = store.create_api_key("bench", ["read", "feedback", "admin"])
    cookies = []
    for user_id in shoppers:
        user = store.create_user(user_id, {}, [], None)
        token, _, _ = store.create_session(user.pk, timedelta(days=1))
        cookies.append(f"{SESSION_COOKIE}={token}")
    engine.dispose()
    return key, cookies


def feedback_to_next_recs(
    server: ServerProcess, ids: dict[str, list[str]], key: str, n: int = 50
) -> dict[str, float]:
    """Unloaded: one shopper's feedback write, then their next top-10, timed together (issue 7)."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    rng = random.Random(0)
    seconds = []
    for _ in range(n):
        user = rng.choice(ids["users"])
        body = {"user_id": user, "item_id": rng.choice(ids["items"]), "event": "like"}
        started = time.perf_counter()
        post = urllib.request.Request(
            f"{server.url}/api/v1/feedback", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(post, timeout=10) as response:
            response.read()
        get = urllib.request.Request(
            f"{server.url}/api/v1/recommendations?user_id={quote(user)}&k=10", headers=headers
        )
        with urllib.request.urlopen(get, timeout=10) as response:
            response.read()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return {
        "p50_ms": round(1000 * seconds[len(seconds) // 2], 2),
        "p95_ms": round(1000 * seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))], 2),
        "n": n,
    }


# The group commit's histograms (backend/metrics.py): writes per commit, the store call's
# seconds per commit, and each write's seconds from joining a batch to having its outcome.
WRITE_PATH_METRICS = {
    "writes": "explainrec_feedback_commit_writes",
    "commit_s": "explainrec_feedback_commit_seconds",
    "wait_s": "explainrec_feedback_wait_seconds",
}
Totals = dict[str, tuple[float, float]]  # metric key -> (sum, count) so far


def parse_write_path(metrics_text: str) -> Totals:
    """Each write-path histogram's (sum, count) so far, from a Prometheus exposition."""
    totals = {key: [0.0, 0.0] for key in WRITE_PATH_METRICS}
    fields = {
        f"{name}_{part}": (key, i)
        for key, name in WRITE_PATH_METRICS.items()
        for i, part in enumerate(("sum", "count"))
    }
    for line in metrics_text.splitlines():
        name, _, value = line.partition(" ")
        if name in fields:
            key, i = fields[name]
            totals[key][i] = float(value)
    return {key: (pair[0], pair[1]) for key, pair in totals.items()}


def write_path_between(before: Totals, after: Totals) -> dict[str, float] | None:
    """Writes per commit, mean store call per commit (ms) and mean wait per write (ms) between
    two readings; None when nothing was committed in between."""
    commits = after["writes"][1] - before["writes"][1]
    waits = after["wait_s"][1] - before["wait_s"][1]
    if commits <= 0 or waits <= 0:
        return None
    return {
        "writes_per_commit": round((after["writes"][0] - before["writes"][0]) / commits, 2),
        "commit_ms": round(1000 * (after["commit_s"][0] - before["commit_s"][0]) / commits, 2),
        "wait_ms": round(1000 * (after["wait_s"][0] - before["wait_s"][0]) / waits, 2),
    }


def write_path_totals(server: ServerProcess) -> Totals | None:
    """The server's write-path totals so far (one worker's), None if /metrics fails."""
    try:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            return parse_write_path(response.read().decode("utf-8"))
    except OSError as exc:
        print(f"  /metrics did not answer ({exc}): no write-path figures for this scenario", flush=True)
        return None


def _top10_bytes(server: ServerProcess, user_id: str, key: str) -> int:
    request = urllib.request.Request(
        f"{server.url}/api/v1/recommendations?user_id={quote(user_id)}&k=10", headers={"X-API-Key": key}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return len(response.read())


def run(args: argparse.Namespace) -> int:
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown or not chosen:
        raise ConfigError(f"--scenarios must name some of {', '.join(SCENARIOS)}; unknown: {unknown}")
    if args.concurrency < 1 or args.duration < 1 or args.workers < 1:
        raise ConfigError("--concurrency, --duration and --workers must be at least 1")
    if args.profile is not None and args.profile not in chosen:
        raise ConfigError(f"--profile {args.profile} needs that scenario in --scenarios")
    if args.profile is not None and py_spy() is None:
        raise ConfigError("--profile needs py-spy (pip install py-spy==0.4.3, in the dev extras)")
    try:
        ids = _ids(args.bundle)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"--bundle {args.bundle}: cannot read its feature spec: {exc}") from exc
    ordered = [s for s in SCENARIOS if s in chosen]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workdir = Path(tempfile.mkdtemp(prefix="explainrec-bench-"))
    log_level = os.environ.get("EXPLAINREC_LOG_LEVEL", "info").lower()
    server = ceiling = None
    try:
        key, ids["session_cookies"] = seed_database(workdir, ids["users"][: args.concurrency])
        (workdir / "ids.json").write_text(json.dumps(ids), "utf-8")
        locust_env = {IDS_ENV: str(workdir / "ids.json"), KEY_ENV: key}
        print(f"starting explainrec serve ({args.workers} worker(s)) on {args.bundle}", flush=True)
        extra = {"EXPLAINREC_RESPONSE_CACHE": "false"} if args.no_response_cache else {}
        server = explainrec_server(args.bundle, workdir, args.workers, None, **extra).start()
        body_bytes = _top10_bytes(server, ids["users"][0], key)
        write_then_read = feedback_to_next_recs(server, ids, key)
        print(f"feedback -> next top-10 (unloaded): {write_then_read}", flush=True)
        results: dict[str, dict[str, float | int]] = {}
        cpu: dict[str, dict[str, float]] = {}
        cpu_per_request: dict[str, float] = {}
        per_commit: dict[str, float] = {}
        write_ms: dict[str, dict[str, float]] = {}
        parts: dict[str, dict[str, float | int]] = {}
        for name in ordered:
            print(f"scenario {name}: {args.concurrency} users for {args.duration} s", flush=True)
            profiler = (
                start_profiler(server.worker_pids()[0], args.duration, workdir)
                if name == args.profile
                else None
            )
            scenario = functools.partial(
                run_locust, SCENARIOS[name], server.url, args.concurrency, args.duration, workdir, locust_env
            )
            # Each worker counts its own commits: one worker's /metrics is the whole story.
            counts = (
                write_path_totals(server) if args.workers == 1 and name in ("feedback", "mixed") else None
            )
            results[name], cpu[name], cpu_per_request[name] = measured(scenario, server, args.duration)
            print(
                f"  {results[name]}; CPU cores used: {cpu[name]}; "
                f"server CPU {cpu_per_request[name]} µs a request; "
                f"saturated: {saturated(cpu[name], args.workers, cpus) or 'none'}",
                flush=True,
            )
            if name == "mixed":
                parts = mixed_parts(workdir)
                print(f"  reads {parts['read']}; writes {parts['write']}", flush=True)
            after = write_path_totals(server) if counts is not None else None
            path = write_path_between(counts, after) if counts is not None and after is not None else None
            if path is not None:
                per_commit[name] = path.pop("writes_per_commit")
                write_ms[name] = path
                print(f"  feedback writes per commit: {per_commit[name]}; in the server {path}", flush=True)
            if profiler is not None:
                out = args.profile_out or (args.json.with_suffix(".profile.txt") if args.json else None)
                finish_profile(profiler, workdir, out)
        server.stop()
        print(f"starting the ceiling app (constant {body_bytes}-byte JSON body)", flush=True)
        ceiling = ceiling_server(workdir, args.workers, body_bytes, log_level).start()
        ceiling_stats, cpu["ceiling"], cpu_per_request["ceiling"] = measured(
            functools.partial(
                run_locust, CEILING_CLASS, ceiling.url, args.concurrency, args.duration, workdir, locust_env
            ),
            ceiling,
            args.duration,
        )
        print(
            f"  ceiling {ceiling_stats}; CPU cores used: {cpu['ceiling']}; "
            f"server CPU {cpu_per_request['ceiling']} µs a request; "
            f"saturated: {saturated(cpu['ceiling'], args.workers, cpus) or 'none'}",
            flush=True,
        )
    finally:
        for proc in (server, ceiling):
            if proc is not None:
                proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    ratio = (
        results["recs"]["rps"] / ceiling_stats["rps"] if "recs" in results and ceiling_stats["rps"] else 0.0
    )
    targets = target_checks(results, ceiling_stats, round(ratio, 3))
    print(
        "targets (issue 9, stated for --concurrency 32): "
        + "; ".join(
            f"{n} {c['value']:g} ({c['target']}) {'met' if c['met'] else 'MISSED'}"
            for n, c in targets.items()
        ),
        flush=True,
    )
    report = {
        "concurrency": args.concurrency,
        "scenarios": results,
        "ceiling": ceiling_stats,
        "ratio_recs_to_ceiling": round(ratio, 3),
        # Each issue-9 target whose scenario ran, judged on this run: value, target, met.
        "targets": targets,
        # Before any load: a feedback write and the same shopper's next top-10, which reflects it.
        "feedback_to_next_recs": write_then_read,
        # Average CPU cores used per scenario by locust and by the server (all its processes):
        # both share this machine, so the load generator's share is not available to the server.
        "cpu_cores": cpu,
        # Per scenario, what used (nearly) all it can (`load_generator`, `server`, `machine`): a
        # ratio between two scenarios both bounded by `load_generator` measures locust.
        "saturated": {name: saturated(cores, args.workers, cpus) for name, cores in cpu.items()},
        # The server's CPU per request in each scenario and the ceiling: unlike req/s, not bounded
        # by the load generator, so their ratio compares the work itself (all workers together).
        "server_cpu_us_per_request": cpu_per_request,
        # Feedback writes per database commit in the write scenarios (group commit; 1 worker only,
        # else empty).
        "writes_per_commit": per_commit,
        # The same scenarios, from the server's histograms: the mean store call per commit and the
        # mean time a write waited in the server for its outcome (queue, commit, hand-offs).
        "write_path_ms": write_ms,
        # The mixed scenario's reads and writes apart (empty without that scenario).
        "mixed_parts": parts,
        "workers": args.workers,
        "response_cache": not args.no_response_cache,
        "cpu_count": os.cpu_count(),
        "environment": environment(),
    }
    print_json_report(report, args.json)
    return 0


# -- locust users (only inside the load-generator process) --

if os.environ.get(LOCUST_ENV) == "1":
    from locust import FastHttpUser, constant, task

    _IDS: dict[str, list[str]] = json.loads(Path(os.environ[IDS_ENV]).read_text("utf-8"))
    _AUTH = {"X-API-Key": os.environ.get(KEY_ENV, "")}
    _JSON_AUTH = {**_AUTH, "Content-Type": "application/json"}

    class _ClosedLoop(FastHttpUser):
        abstract = True
        wait_time = constant(0)  # the next request goes out as soon as the last one answers

    class RecsUser(_ClosedLoop):
        @task
        def top10(self) -> None:
            user = random.choice(_IDS["users"])
            self.client.get(f"/api/v1/recommendations?user_id={user}&k=10", headers=_AUTH, name="recs")

    class RecsExplainUser(_ClosedLoop):
        @task
        def top10_explained(self) -> None:
            user = random.choice(_IDS["users"])
            self.client.get(
                f"/api/v1/recommendations?user_id={quote(user)}&k=10&explain=true",
                headers=_AUTH,
                name="recs_explain",
            )

    class ColdStartUser(_ClosedLoop):
        @task
        def cold_start(self) -> None:
            body = {
                "profile": {
                    "age": random.randint(18, 70),
                    "interests": random.sample(_IDS["categories"], k=min(2, len(_IDS["categories"]))),
                },
                "liked_items": random.sample(_IDS["items"], k=2),
                "k": 10,
                "explain": False,
            }
            self.client.post(
                "/api/v1/recommendations/cold-start",
                data=json.dumps(body),
                headers=_JSON_AUTH,
                name="cold_start",
            )

    class SimilarUser(_ClosedLoop):
        @task
        def similar(self) -> None:
            self.client.get(
                f"/api/v1/items/{quote(random.choice(_IDS['items']), safe='')}/similar?k=10", name="similar"
            )

    class ItemUser(_ClosedLoop):
        @task
        def item(self) -> None:
            self.client.get(f"/api/v1/items/{quote(random.choice(_IDS['items']), safe='')}", name="item")

    _SHOPPER_NUMBERS = itertools.count()

    class ShopperUser(_ClosedLoop):
        """A signed-in shopper reloading their own explained list, as the web UI asks for it."""

        def on_start(self) -> None:
            cookies = _IDS["session_cookies"]
            self.cookie = {"Cookie": cookies[next(_SHOPPER_NUMBERS) % len(cookies)]}

        @task
        def own_list(self) -> None:
            self.client.get("/api/v1/recommendations?k=10&explain=true", headers=self.cookie, name="shopper")

    def _random_click() -> str:
        """A feedback write for a random known user and item (a click: it folds into the history)."""
        body = {
            "user_id": random.choice(_IDS["users"]),
            "item_id": random.choice(_IDS["items"]),
            "event": "click",
            "idempotency_key": uuid.uuid4().hex,
        }
        return json.dumps(body)

    class FeedbackUser(_ClosedLoop):
        @task
        def feedback(self) -> None:
            self.client.post("/api/v1/feedback", data=_random_click(), headers=_JSON_AUTH, name="feedback")

    class MixedUser(_ClosedLoop):
        """API traffic that writes: each write drops that shopper's stored answers in every worker."""

        @task(9)
        def top10(self) -> None:
            user = random.choice(_IDS["users"])
            self.client.get(f"/api/v1/recommendations?user_id={user}&k=10", headers=_AUTH, name="mixed_read")

        @task(1)
        def feedback(self) -> None:
            self.client.post("/api/v1/feedback", data=_random_click(), headers=_JSON_AUTH, name="mixed_write")

    class CeilingUser(_ClosedLoop):
        @task
        def ceiling(self) -> None:
            self.client.get("/ceiling", name="ceiling")
