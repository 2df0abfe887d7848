"""recurring series, user time settings, local due times, urgent/snoozed/held reminders

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("rule", sa.Text),
        sa.Column("repeat_after", sa.String(64)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("start_local", sa.String(32), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("reminders", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_series_user", "series", ["user_id"])
    op.create_table(
        "user_profiles",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("timezone", sa.String(64)),
        sa.Column("quiet_start", sa.String(5)),
        sa.Column("quiet_end", sa.String(5)),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("due_local", sa.String(32)))
        batch.add_column(sa.Column("series_id", sa.String(32)))
        batch.add_column(sa.Column("occurrence", sa.Integer))
        batch.add_column(sa.Column("occurrence_local", sa.String(32)))
    op.create_index("ix_tasks_series", "tasks", ["series_id"])
    op.create_index("ix_tasks_user_local", "tasks", ["user_id", "status", "timezone"])
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("snooze", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("held_us", sa.BigInteger))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("late")
    with op.batch_alter_table("reminders") as batch:
        for name in ("held_us", "snooze", "urgent"):
            batch.drop_column(name)
    op.drop_index("ix_tasks_user_local", "tasks")
    op.drop_index("ix_tasks_series", "tasks")
    with op.batch_alter_table("tasks") as batch:
        for name in ("occurrence_local", "occurrence", "series_id", "due_local"):
            batch.drop_column(name)
    op.drop_table("user_profiles")
    op.drop_index("ix_series_user", "series")
    op.drop_table("series")
