"""Small SQL helpers shared by duetime's stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")

BATCH = 500  # rows or parameters per statement: well under SQLite's and asyncpg's limits


def chunks(items: list[T], size: int = BATCH) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def upsert_insert(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing/do_update` on both databases."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class Transaction:
    """A connection inside a transaction, and what to run once it has committed."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """`engine.begin()` whose after-commit callbacks run before the connection goes back to
    the pool: with SQLite's single connection, callbacks run in commit order."""
    async with engine.connect() as conn:
        async with conn.begin():
            tx = Transaction(conn)
            yield tx
        for callback in tx._after_commit:
            callback()
