"""A change counter for everything a cached shopper or session is read from, except new feedback.

New feedback rows are the common write, and each one changes a single shopper: workers find
whose feedback arrived by reading `feedback_events` past the highest id they have seen, and drop
only those shoppers. Every other change to the tables behind the caches (a user's profile, a
session changed or ended, feedback edited or deleted) bumps the `state` counter, and workers
then drop every cached shopper and session, as they did on any commit before. SQLite only, like
the API-key counter of 0002; on PostgreSQL nothing is cached that these would guard.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# (table, events) whose changes make cached shoppers or sessions stale beyond one known user.
WATCHED = (
    ("users", ("insert", "update", "delete")),
    ("sessions", ("update", "delete")),  # a new session makes nothing stale
    ("feedback_events", ("update", "delete")),
)


def upgrade() -> None:
    op.execute("INSERT INTO change_counters (name, value) VALUES ('state', 0)")
    if op.get_bind().dialect.name == "sqlite":
        for table, events in WATCHED:
            for event in events:
                op.execute(
                    f"CREATE TRIGGER {table}_{event}_state_counter AFTER {event.upper()} ON {table} "
                    "BEGIN UPDATE change_counters SET value = value + 1 WHERE name = 'state'; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, events in WATCHED:
            for event in events:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}_state_counter")
    op.execute("DELETE FROM change_counters WHERE name = 'state'")
