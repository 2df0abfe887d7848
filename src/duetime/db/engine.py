"""Engines from user-facing URLs, and migrations at start-up."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, text
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
    """Bring the schema to `revision`, the newest of every branch by default, or a branch's
    newest (`jobs@head`) (idempotent). A database already there is left without loading
    alembic: its import and a no-op upgrade cost ≈ 0.3 s of CPU per process start. An empty
    database gets the whole schema from `duetime.db.tables` at once and is stamped at the
    heads: ≈ 0.05 s against ≈ 0.8 s for thirteen migrations (tests check that both give the
    same schema)."""
    async with engine.begin() as conn:
        if await conn.run_sync(_already_at, revision):
            return
        if revision == "heads" and await conn.run_sync(_create_fresh):
            return
        await conn.run_sync(_upgrade, revision)


@functools.cache
def _revisions() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Each migration's revision → (its down revisions, its branch labels), read from the
    files' assignments as alembic writes them (tests check this against alembic)."""
    found: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        values = {
            m["name"]: ast.literal_eval(m["value"])
            for m in _ASSIGNMENT.finditer(path.read_text(encoding="utf-8"))
        }
        if "revision" in values:
            found[values["revision"]] = (_names(values.get("down_revision")),
                                         _names(values.get("branch_labels")))  # fmt: skip
    return found


_ASSIGNMENT = re.compile(
    r"^(?P<name>revision|down_revision|branch_labels)\s*=\s*(?P<value>.+)$", re.MULTILINE
)


def _names(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    return frozenset([value] if isinstance(value, str) else value)


def script_heads(revision: str = "heads") -> frozenset[str] | None:
    """The revisions a database at `revision` holds in alembic_version: every head for
    `heads`, the branch's head for `label@head`; None for anything else."""
    revisions = _revisions()
    referenced = {down for downs, _ in revisions.values() for down in downs}
    heads = frozenset(r for r in revisions if r not in referenced)
    if revision == "heads":
        return heads
    label, _, rest = revision.partition("@")
    if rest != "head":
        return None
    return frozenset(h for h in heads if label in _branches_of(h, revisions)) or None


def _branches_of(rev: str, revisions: dict[str, tuple[frozenset[str], frozenset[str]]]) -> set[str]:
    labels: set[str] = set()
    todo = [rev]
    while todo:
        downs, own = revisions[todo.pop()]
        labels |= own
        todo.extend(downs)
    return labels


def _already_at(connection: Connection, revision: str) -> bool:
    wanted = script_heads(revision)
    if wanted is None or not inspect(connection).has_table("alembic_version"):
        return False
    current = {
        row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))
    }
    known = set(_revisions())
    if revision == "heads":
        return current == wanted
    return wanted <= current <= known


def _create_fresh(connection: Connection) -> bool:
    """On a database with no tables, create duetime's schema and stamp it at the heads."""
    from duetime.db.tables import metadata

    if inspect(connection).get_table_names():
        return False
    metadata.create_all(connection)
    connection.execute(
        text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    heads = script_heads()
    assert heads is not None
    connection.execute(
        text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
        [{"v": head} for head in sorted(heads)],
    )
    return True


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
