"""SQLAlchemy's aiosqlite adapter with one thread hop per statement instead of four.

aiosqlite runs SQLite in its own thread; every call is a round trip to it, which costs
about 150 µs of CPU on a small VM (a context switch each way). SQLAlchemy's adapter makes
four per statement: open a cursor, execute, fetch, close. This one executes on the
connection (one hop) and fetches only when there are rows (a second hop), and lets the
finished SQLite cursor go without a hop to close it: `fetchall` has run every statement to
completion, so none is left holding a read snapshot. Commit and rollback make no hop when
SQLite has no transaction open (after reads only).

Used through `create_async_engine(..., module=lean_aiosqlite())`; everything else is the
stock dialect.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


class _LeanCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def __init__(self, adapt_connection: Any) -> None:  # no cursor opened up front
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    @property
    def description(self) -> Any:
        if "description" in self._soft_closed_memoized:
            return self._soft_closed_memoized["description"]
        return None if self._cursor is None else self._cursor.description

    @property
    def rowcount(self) -> int:
        return -1 if self._cursor is None else self._cursor.rowcount

    @property
    def lastrowid(self) -> Any:
        return None if self._cursor is None else self._cursor.lastrowid

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._cursor = await self._connection.execute(operation, parameters)
            if self._cursor.description:
                self._rows = collections.deque(await self._cursor.fetchall())
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._cursor = await self._connection.executemany(operation, seq_of_parameters)
        return None

    async def _async_soft_close(self) -> None:
        if self._cursor is not None:
            self._soft_closed_memoized = self._soft_closed_memoized.union(
                {"description": self._cursor.description}
            )

    def close(self) -> None:
        self._rows.clear()


class _LeanConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _LeanCursor

    def _in_transaction(self) -> bool:
        return bool(self._connection._connection) and self._connection.in_transaction

    def rollback(self) -> None:
        if self._in_transaction():  # reads leave nothing to undo: no hop
            super().rollback()

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()


class _LeanDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        kw.setdefault("async_creator_fn", _open)
        stock = super().connect(*arg, **kw)
        return _LeanConnection(self, stock._connection)


async def _open(*arg: Any, **kw: Any) -> aiosqlite.Connection:
    """Open a connection; after a failed open, wait for aiosqlite's worker thread to end.

    aiosqlite stops its thread after a failed open without awaiting the stop. When the
    event loop closes first (a refused start), the thread dies on the closed loop and
    prints a traceback beside the one-line error.
    """
    connection = aiosqlite.connect(*arg, **kw)
    connection._thread.daemon = True
    try:
        return await connection
    except BaseException:
        await asyncio.to_thread(connection._thread.join, 5)
        raise


def lean_aiosqlite() -> AsyncAdapt_aiosqlite_dbapi:
    import sqlite3

    return _LeanDbapi(aiosqlite, sqlite3)
