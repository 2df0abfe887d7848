"""The schema. Times are BIGINT microseconds since the Unix epoch (UTC)."""

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("schedule", Text),
    Column("due_time", Text),
    Column("repeats", Integer),
    Column("ttl", Text),
    Column("data", Text),  # JSON text; NULL when the job has no data
    Column("failure_policy", Text),  # JSON text; NULL means the default policy
    Column("created_us", BigInteger, nullable=False),
    Column("anchor_us", BigInteger, nullable=False),
    Column("next_fire_us", BigInteger, nullable=False),
    Column("tick_us", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("fired", Integer, nullable=False),
    Column("expires_us", BigInteger),
    Column("generation", BigInteger, nullable=False),
    Index("ix_jobs_next_fire", "next_fire_us", "name"),
)

dead_letters = Table(
    "job_dead_letters",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(256), nullable=False, index=True),
    Column("data", Text),
    Column("scheduled_us", BigInteger, nullable=False),
    Column("failed_us", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
)
