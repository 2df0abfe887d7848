"""deliveries keep the W3C trace context of the fire that wrote them: each attempt's span is
its child, and a webhook carries it as `traceparent`

Existing deliveries have none (NULL): their attempts start traces of their own.

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("trace_context", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("trace_context")
