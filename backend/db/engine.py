"""Engine factory and the Alembic upgrade the app runs at start-up.

SQLite gets WAL (readers never block the one writer) and a busy timeout, so several
worker processes can share one file; PostgreSQL needs nothing special.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import sessionmaker

from explainrec.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# How long a SQLite connection retries a lock another connection holds before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000
# With background checkpoints (backend/db/checkpoint.py), the connections' own threshold: 16x
# SQLite's default, ~64 MB of log at 4 KB pages, should that thread stop or fall behind.
SAFETY_AUTOCHECKPOINT_PAGES = 16_000
# The size SQLite cuts the WAL file back to when it starts the log over. SQLite otherwise keeps
# the file at the largest it ever grew (a reader left open for an hour pins the log meanwhile)
# and reuses it; this keeps room for a full log up to the safety net, so the cut is rare.
WAL_SIZE_LIMIT_BYTES = (SAFETY_AUTOCHECKPOINT_PAGES + 1_000) * 4096


def in_memory_sqlite(database: str | None) -> bool:
    """A SQLite database name (URL path or file name) that names no file."""
    return not database or database == ":memory:" or "mode=memory" in database


def sqlite_file(url: str | URL) -> str | None:
    """The file of a SQLite URL, as a path `sqlite3.connect` opens; None for another database or
    an in-memory one. A URI filename (`sqlite:///file:data.db?uri=true`, SQLite's own syntax,
    which SQLAlchemy passes through) names its path after `file:`, or no file with `mode=memory`:
    the threads that open their own connection (WAL checkpoints, the change watch) must reach
    the database the engine writes, not a file literally called `file:data.db`."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    uri = str(parsed.query.get("uri", "")).lower() in ("true", "1")
    if database and uri and database.startswith("file:"):
        if parsed.query.get("mode") == "memory":
            return None
        database = _uri_path(database)
    return None if in_memory_sqlite(database) else database


def _uri_path(uri: str) -> str:
    """The path of a SQLite URI filename: `file:rel.db`, `file:/abs.db`, `file:///abs.db`,
    `file://localhost/abs.db`, percent-escapes decoded."""
    rest = uri[len("file:") :]
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ConfigError(f"a SQLite URI names a file on this machine, not on {host!r}: {uri}")
        rest = "/" + path
    return unquote(rest.split("?", 1)[0].split("#", 1)[0])


def make_engine(url: str, background_checkpoints: bool = False) -> Engine:
    """The engine for a database URL. `background_checkpoints`: a SQLite file's connections leave
    WAL checkpoints to a `WalCheckpointer` thread (backend/db/checkpoint.py), so no commit on the
    request path pays for one; the app runs that thread."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with an unhelpful message
        raise ConfigError(f"EXPLAINREC_DATABASE_URL is not a valid database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        file = sqlite_file(parsed)
        if file is not None:
            try:
                Path(file).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the folder of the SQLite database {file}: {exc}") from exc
        # A pool as large as the thread pool that serves sync routes (anyio's default is 40): a
        # smaller one opens and closes overflow connections under load, each paying for the pragmas.
        # In memory, SQLAlchemy's own pool (one connection a thread) is the only one that works.
        pool: dict[str, Any] = {} if file is None else {"pool_size": 20, "max_overflow": 20}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if background_checkpoints:
            event.listen(engine, "connect", _checkpoint_only_past_the_safety_net)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # Plain postgresql:// would pick psycopg2, which is not installed; psycopg 3 is.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args={"connect_timeout": 5}
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()


def _checkpoint_only_past_the_safety_net(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={SAFETY_AUTOCHECKPOINT_PAGES}")


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


def upgrade_database(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
