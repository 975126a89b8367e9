"""Alembic environment: the app passes its own connection (see backend.db.engine.upgrade_database).

Run by hand with:  alembic -c backend/alembic.ini -x url=sqlite:///artifacts/explainrec.db upgrade head
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from backend.db.models import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass the database with -x url=...")
    with create_engine(url).begin() as conn:
        _run(conn)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
