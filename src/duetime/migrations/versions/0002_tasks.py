"""tasks, reminders, notifications and the scheduling outbox

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("due_us", sa.BigInteger),
        sa.Column("due_sort_us", sa.BigInteger, nullable=False),
        sa.Column("timezone", sa.String(64)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("completed_us", sa.BigInteger),
    )
    op.create_index("ix_tasks_user_due", "tasks", ["user_id", "due_sort_us", "id"])
    op.create_index("ix_tasks_user_created", "tasks", ["user_id", "created_us", "id"])
    op.create_index("ix_tasks_done", "tasks", ["status", "completed_us"])
    op.create_table(
        "reminders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("before", sa.String(64)),
        sa.Column("offset_us", sa.BigInteger),
        sa.Column("at_us", sa.BigInteger),
        sa.Column("fire_us", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("delivered_us", sa.BigInteger),
        sa.Column("lateness_ms", sa.Float),
    )
    op.create_index("ix_reminders_task_id", "reminders", ["task_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("reminder_id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("scheduled_us", sa.BigInteger, nullable=False),
        sa.Column("fired_us", sa.BigInteger, nullable=False),
        sa.Column("lateness_ms", sa.Float, nullable=False),
        sa.Column("read", sa.Boolean, nullable=False),
        sa.UniqueConstraint("reminder_id", "scheduled_us", name="uq_notifications_occurrence"),
    )
    op.create_index("ix_notifications_user", "notifications", ["user_id", "fired_us", "id"])
    op.create_table(
        "schedule_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("job_name", sa.String(400), nullable=False),
        sa.Column("job", sa.Text),
    )


def downgrade() -> None:
    for table in ("schedule_outbox", "notifications", "reminders", "tasks"):
        op.drop_table(table)
