"""A change counter for the API-key table, bumped by SQLite triggers.

Lets every worker tell "an API key was created, changed or revoked" apart from any other
commit (feedback writes above all), so key checks stay cached through write traffic while a
revocation still takes effect on the next request. The triggers also fire for a hand-run
`sqlite3` session. On PostgreSQL the counter is not used (key checks expire by TTL there).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.execute("INSERT INTO change_counters (name, value) VALUES ('api_keys', 0)")
    if op.get_bind().dialect.name == "sqlite":
        for event in EVENTS:
            op.execute(
                f"CREATE TRIGGER api_keys_{event}_counter AFTER {event.upper()} ON api_keys "
                "BEGIN UPDATE change_counters SET value = value + 1 WHERE name = 'api_keys'; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS api_keys_{event}_counter")
    op.drop_table("change_counters")
