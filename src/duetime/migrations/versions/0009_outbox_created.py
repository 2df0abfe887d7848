"""the scheduling outbox remembers when each intent was written (its age is a metric)

Intents already waiting have no time: they read as written now.

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedule_outbox") as batch:
        batch.add_column(sa.Column("created_us", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("schedule_outbox") as batch:
        batch.drop_column("created_us")
