"""jobs count the triggers their app answered 404 (DUETIME_APP_404=success), and the last

The first revision of the `jobs` branch, which grows from 0001 beside duetime's other
migrations: a jobs-only database (`SqlJobStore` on its own URL) migrates to `jobs@head` and
gets it without the app's tables. Existing jobs start at 0.

Revision ID: 0008
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = ("jobs",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("app_not_found", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("app_not_found_us", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("app_not_found_us")
        batch.drop_column("app_not_found")
