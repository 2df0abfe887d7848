"""events that reached the pub/sub dead-letter topic

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_dead_letters",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("pubsub", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("type", sa.String(200)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("first_us", sa.BigInteger, nullable=False),
        sa.Column("last_us", sa.BigInteger, nullable=False),
        sa.Column("times", sa.Integer, nullable=False),
        sa.Column("replays", sa.Integer, nullable=False),
        sa.Column("replayed_us", sa.BigInteger),
    )
    op.create_index("ix_event_dead_letters_last", "event_dead_letters", ["last_us", "id"])


def downgrade() -> None:
    op.drop_index("ix_event_dead_letters_last", "event_dead_letters")
    op.drop_table("event_dead_letters")
