"""the embedded pub/sub broker: messages, consumer groups, deliveries

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pubsub_messages",
        sa.Column("seq", _id(), primary_key=True, autoincrement=True),
        sa.Column("pubsub", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(400), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_pubsub_messages_topic", "pubsub_messages", ["pubsub", "topic", "seq"])
    op.create_index("ix_pubsub_messages_created", "pubsub_messages", ["created_us"])
    op.create_table(
        "pubsub_groups",
        sa.Column("app_id", sa.String(200), primary_key=True),
        sa.Column("pubsub", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(400), primary_key=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "pubsub_deliveries",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("message_seq", sa.BigInteger, nullable=False),
        sa.Column("app_id", sa.String(200), nullable=False),
        sa.Column("pubsub", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(400), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("message_seq", "app_id", name="uq_pubsub_deliveries_message_app"),
    )
    op.create_index("ix_pubsub_deliveries_due", "pubsub_deliveries", ["state", "next_attempt_us"])


def downgrade() -> None:
    op.drop_index("ix_pubsub_deliveries_due", "pubsub_deliveries")
    op.drop_table("pubsub_deliveries")
    op.drop_table("pubsub_groups")
    op.drop_index("ix_pubsub_messages_created", "pubsub_messages")
    op.drop_index("ix_pubsub_messages_topic", "pubsub_messages")
    op.drop_table("pubsub_messages")
