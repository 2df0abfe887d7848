"""jobs and job dead letters

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("name", sa.String(400), primary_key=True),
        sa.Column("schedule", sa.Text),
        sa.Column("due_time", sa.Text),
        sa.Column("repeats", sa.Integer),
        sa.Column("ttl", sa.Text),
        sa.Column("data", sa.Text),
        sa.Column("failure_policy", sa.Text),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("anchor_us", sa.BigInteger, nullable=False),
        sa.Column("next_fire_us", sa.BigInteger, nullable=False),
        sa.Column("tick_us", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("fired", sa.Integer, nullable=False),
        sa.Column("expires_us", sa.BigInteger),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_jobs_next_fire", "jobs", ["next_fire_us", "name"])
    op.create_table(
        "job_dead_letters",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("data", sa.Text),
        sa.Column("scheduled_us", sa.BigInteger, nullable=False),
        sa.Column("failed_us", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )
    op.create_index("ix_job_dead_letters_name", "job_dead_letters", ["name"])


def downgrade() -> None:
    op.drop_table("job_dead_letters")
    op.drop_table("jobs")
