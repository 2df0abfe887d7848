"""Alembic environment: migrations run on the connection duetime hands over."""

from alembic import context
from sqlalchemy import text

from duetime.db.tables import metadata

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    # Replicas starting together must not migrate at once.
    connection.execute(text("SELECT pg_advisory_xact_lock(7461093)"))
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
