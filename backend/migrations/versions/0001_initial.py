"""Initial schema: users, credentials, sessions, API keys, feedback events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("age", sa.Integer, nullable=True),
        sa.Column("gender", sa.String(32), nullable=True),
        sa.Column("occupation", sa.String(64), nullable=True),
        sa.Column("location", sa.String(64), nullable=True),
        sa.Column("interests", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_users_user_id", "users", ["user_id"], unique=True)
    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "user_pk", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True
        ),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_pk", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_sessions_user_pk", "sessions", ["user_pk"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("timestamp", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_feedback_idempotency_key"),
    )
    op.create_index("ix_feedback_events_user_id", "feedback_events", ["user_id"])


def downgrade() -> None:
    op.drop_table("feedback_events")
    op.drop_table("api_keys")
    op.drop_table("sessions")
    op.drop_table("credentials")
    op.drop_table("users")
