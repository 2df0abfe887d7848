"""Engines from user-facing URLs, and migrations at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from duetime.db.sqlite import lean_aiosqlite

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseUrlError(ValueError):
    """The database URL is not one duetime can use."""


def async_url(url: str) -> str:
    """`sqlite:///path` or `postgresql://user@host/db` → the URL with duetime's async driver.
    A URL that already names a driver is kept."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise DatabaseUrlError(f"not a database URL: {url!r}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in _DRIVERS:
        raise DatabaseUrlError(
            f"unsupported database {backend!r} in {url!r}: use sqlite:///path or postgresql://…"
        )
    if driver:
        return url
    return parsed.set(drivername=_DRIVERS[backend]).render_as_string(hide_password=False)


def create_engine(url: str) -> AsyncEngine:
    full = async_url(url)
    if full.startswith("sqlite"):
        # One connection: SQLite has one writer, and its busy handler sleeps in steps of up
        # to 100 ms; waiting for the pool's connection instead is fair and asyncio-friendly.
        engine = create_async_engine(
            full,
            module=lean_aiosqlite() if full.startswith("sqlite+aiosqlite") else None,
            connect_args={"timeout": 30},
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=300,
            # the default reset on return (ROLLBACK) costs no hop with the lean adapter
            # when no transaction is open, and ends any that a failure left open
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(full, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def prepare(url: str) -> None:
    """Connect to the database at `url` and migrate it; raises on any failure."""
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def safe_url(url: str) -> str:
    """`url` with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


async def migrate(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the schema to `revision`, the newest of every branch by default (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
