"""`explainrec apikey create`: a new API key, printed once and stored hashed.

explainrec apikey create --scopes read,feedback --name shop-frontend
EXPLAINREC_DATABASE_URL=postgresql://... explainrec apikey create --scopes admin
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--scopes", default="read", help="comma-separated: read,feedback,admin")
    create.add_argument("--name", default="api client", help="a label to recognise the key by")
    create.add_argument(
        "--workdir", type=Path, help="artifacts folder holding explainrec.db; default ./artifacts"
    )
    create.add_argument("--database-url", help="default: EXPLAINREC_DATABASE_URL or <workdir>/explainrec.db")


def run(args: argparse.Namespace) -> int:
    from backend.db.engine import make_engine, make_session_factory, upgrade_database
    from backend.settings import Settings
    from backend.store import SCOPES, Store
    from explainrec.errors import ConfigError

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise ConfigError(
            f"--scopes must be a comma-separated subset of {','.join(SCOPES)}; got {args.scopes!r}"
        )
    overrides: dict[str, object] = {}
    if args.workdir is not None:
        overrides["workdir"] = args.workdir
    if args.database_url:
        overrides["database_url"] = args.database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    engine = make_engine(settings.resolved_database_url())
    upgrade_database(engine)
    key, record = Store(make_session_factory(engine)).create_api_key(args.name[:128], scopes)
    engine.dispose()
    print(key)
    print(
        f"created API key #{record.id} {record.name!r} with scopes {','.join(sorted(record.scopes))}; "
        "it is shown only now (the database keeps its sha256). Send it as the X-API-Key header.",
        file=sys.stderr,
    )
    return 0
