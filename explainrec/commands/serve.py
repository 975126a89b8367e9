"""`explainrec serve`: the API and web UI with uvicorn.

    explainrec serve --bundle artifacts/bundles --port 8000 --workers 2

Workers default to the number of CPU cores (the GIL keeps one process to one core; each worker
holds its own copy of the bundle, ~tens of MB for ML-100K). The access log is off unless
EXPLAINREC_ACCESS_LOG=true or --access-log: it costs ~10 % of throughput, and /metrics already
counts requests per route and status. Options become EXPLAINREC_* environment variables, so
every worker process builds the same settings (see backend/settings.py for the rest, e.g.
EXPLAINREC_DATABASE_URL). The math libraries run one thread per worker unless OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS or MKL_NUM_THREADS say otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import MutableMapping
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle",
        type=Path,
        help="bundles root (follows LATEST) or one version dir; default <workdir>/bundles",
    )
    parser.add_argument(
        "--workdir", type=Path, help="artifacts folder (bundles, explainrec.db); default ./artifacts"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the database (default: CPU cores, at most 4)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    parser.add_argument("--demo-mode", action="store_true", help="let the UI sign in as any model shopper")
    parser.add_argument("--explainer", choices=["template", "llm", "openai"], help="default: template")


def configure_environment(args: argparse.Namespace) -> None:
    if args.bundle is not None:
        os.environ["EXPLAINREC_BUNDLE_DIR"] = str(Path(args.bundle).resolve())
    if args.workdir is not None:
        os.environ["EXPLAINREC_WORKDIR"] = str(Path(args.workdir).resolve())
    if args.demo_mode:
        os.environ["EXPLAINREC_DEMO_MODE"] = "true"
    if args.explainer:
        os.environ["EXPLAINREC_EXPLAINER"] = args.explainer
    if getattr(args, "access_log", False):
        os.environ["EXPLAINREC_ACCESS_LOG"] = "true"


# Thread pools of the vector math: a request's numpy / torch / FAISS work is small, and several
# threads per worker only spin against each other and the other workers (on 2 busy cores OpenMP's
# spinning made such steps 10-100x slower). Parallelism comes from the workers; an explicit value
# in the environment wins.
MATH_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_math(environ: MutableMapping[str, str]) -> None:
    """One thread per worker for the math libraries, unless the environment says otherwise. Set
    before the app's modules load numpy and torch (they size their pools once, at first use):
    uvicorn's workers inherit it; a single worker runs in this process, so `explainrec demo`
    sets it before it trains."""
    for name in MATH_THREAD_VARIABLES:
        environ.setdefault(name, "1")


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def serve(host: str, port: int, workers: int | None) -> int:
    single_threaded_math(os.environ)
    import uvicorn

    from backend.db.engine import make_engine, upgrade_database
    from backend.settings import Settings
    from explainrec.errors import ConfigError

    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {port}")
    settings = Settings()
    # Migrate once here, not racing in every worker.
    engine = make_engine(settings.resolved_database_url())
    upgrade_database(engine)
    engine.dispose()
    os.environ["EXPLAINREC_MIGRATE_ON_STARTUP"] = "false"
    print(f"serving on http://{host}:{port} with {workers} worker(s) (API docs at /docs)", flush=True)
    uvicorn.run(
        "backend.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        proxy_headers=True,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    configure_environment(args)
    return serve(args.host, args.port, args.workers)
