"""channel settings, deliveries and their attempts, and the event outbox/log

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "channel_settings",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_enabled", sa.Boolean, nullable=False),
        sa.Column("webhook_secret", sa.String(100), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("email_enabled", sa.Boolean, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("notification_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("attempt_limit", sa.Integer, nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("delivered_us", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.Column("replays", sa.Integer, nullable=False),
        sa.UniqueConstraint(
            "notification_id", "channel", name="uq_deliveries_notification_channel"
        ),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_us"])
    op.create_index("ix_deliveries_user", "deliveries", ["user_id", "created_us", "id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("http_status", sa.Integer),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("finished_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])
    op.create_table(
        "events",
        sa.Column("id", _SERIAL, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, unique=True),
        sa.Column("published_us", sa.BigInteger),
    )
    op.create_index("ix_events_user_seq", "events", ["user_id", "seq"])
    op.create_index("ix_events_unpublished", "events", ["published_us", "id"])


def downgrade() -> None:
    for table in ("events", "delivery_attempts", "deliveries", "channel_settings"):
        op.drop_table(table)
