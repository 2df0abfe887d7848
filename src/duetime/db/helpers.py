"""Small SQL helpers shared by duetime's stores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

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
        self._if_unsure: list[Callable[[], Awaitable[None]]] = []

    def after_commit(
        self,
        callback: Callable[[], None],
        *,
        if_unsure: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Run `callback` once the transaction has committed, in commit order. If the commit
        raised, so that it may or may not have taken (a connection lost at COMMIT),
        `if_unsure` runs in the background instead, to re-read what it may have written."""
        self._after_commit.append(callback)
        if if_unsure is not None:
            self._if_unsure.append(if_unsure)


_commit_locks: WeakKeyDictionary[Engine, asyncio.Lock] = WeakKeyDictionary()
_background: set[asyncio.Task[None]] = set()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """`engine.begin()` with after-commit callbacks, run in commit order: a transaction with
    callbacks commits and runs them under one lock per engine (a no-op with SQLite's single
    connection; with PostgreSQL's pool, two transactions that wrote the same rows could
    otherwise resume in the other order). The commit and its callbacks are not interrupted
    by cancellation once begun."""
    async with engine.connect() as conn:
        began = await conn.begin()
        tx = Transaction(conn)
        try:
            yield tx
        except BaseException:
            await began.rollback()
            raise
        if not tx._after_commit:
            await began.commit()
            return
        finishing = asyncio.ensure_future(_commit_in_order(engine, began, tx))
        try:
            await asyncio.shield(finishing)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await finishing  # the connection goes back to the pool only after it
            raise


async def _commit_in_order(engine: AsyncEngine, began: AsyncTransaction, tx: Transaction) -> None:
    lock = _commit_locks.setdefault(engine.sync_engine, asyncio.Lock())
    async with lock:
        try:
            await began.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # SQLite keeps it open after a failed COMMIT
                await began.rollback()
            for recheck in tx._if_unsure:
                task = asyncio.ensure_future(recheck())
                _background.add(task)
                task.add_done_callback(_background.discard)
            raise
        for callback in tx._after_commit:
            callback()
