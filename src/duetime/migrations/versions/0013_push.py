"""the Web Push channel: push subscriptions (one per device), `push_enabled` in the channel
settings, and one delivery per device: deliveries are unique per (notification, channel,
device), `device` being the push subscription ("" for webhook and email, so those stay one
per notification and channel)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("endpoint_hash", sa.String(64), nullable=False),
        sa.Column("p256dh", sa.String(100), nullable=False),
        sa.Column("auth", sa.String(40), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("last_success_us", sa.BigInteger),
        sa.Column("last_failure_us", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("endpoint_hash", name="uq_push_subscriptions_endpoint_hash"),
    )
    op.create_index("ix_push_subscriptions_user", "push_subscriptions", ["user_id", "created_us"])
    with op.batch_alter_table("channel_settings") as batch:
        batch.add_column(
            sa.Column("push_enabled", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("device", sa.String(32), nullable=False, server_default=""))
        batch.drop_constraint("uq_deliveries_notification_channel", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_notification_device", ["notification_id", "channel", "device"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE channel = 'push'")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_notification_device", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_notification_channel", ["notification_id", "channel"]
        )
        batch.drop_column("device")
    with op.batch_alter_table("channel_settings") as batch:
        batch.drop_column("push_enabled")
    op.drop_index("ix_push_subscriptions_user", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
