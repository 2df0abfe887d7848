"""A full database told apart from other failures, and remembered until a write commits.

SQLite says SQLITE_FULL ("database or disk is full": the disk, or `max_page_count`);
PostgreSQL says SQLSTATE 53100 `disk_full`; anything else may say ENOSPC. The API answers
those 507 naming storage instead of a bare 500, and `/readyz` is 503 from the first such
failure until a transaction that wrote commits again.
"""

from __future__ import annotations

import errno
import re
import sqlite3
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine

SQLITE_FULL = 13
PG_DISK_FULL = "53100"
_READS = ("SELECT", "PRAGMA", "SHOW", "BEGIN")
_WRITE_IN_WITH = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


def writes(statement: str) -> bool:
    """Whether a statement may write: only then does its commit say there is room again."""
    head = statement.lstrip()[:6].upper()
    if head.startswith("WITH"):
        return _WRITE_IN_WITH.search(statement) is not None
    return not head.startswith(_READS)


def storage_full(exc: BaseException | None) -> str | None:
    """Why `exc` (or what caused it) says storage is full, or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "sqlite_errorcode", None)  # not on errors made in Python
        if isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF == SQLITE_FULL:
            return f"SQLite: {exc}"
        if getattr(exc, "sqlstate", None) == PG_DISK_FULL:
            return f"PostgreSQL: {exc}"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f"{exc.strerror or 'no space left on device'}"
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None


@dataclass
class StorageHealth:
    """Whether the last write of `engine` failed for want of room."""

    full: str | None = None
    since: datetime | None = None
    _writing: weakref.WeakSet[Connection] = field(default_factory=weakref.WeakSet, repr=False)

    def watch(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._on_execute)
        event.listen(sync, "commit", self._on_commit)
        event.listen(sync, "rollback", self._on_rollback)
        event.listen(sync, "handle_error", self._on_error)

    def problem(self) -> str | None:
        if self.full is None or self.since is None:
            return None
        return f"storage is full since {self.since:%Y-%m-%dT%H:%M:%SZ}: {self.full}"

    def _on_execute(self, conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if writes(statement):
            self._writing.add(conn)

    def _on_commit(self, conn: Connection) -> None:
        # before the commit: if it fails for want of room, `_on_error` marks it full again
        if conn in self._writing:
            self._writing.discard(conn)
            self.full = self.since = None

    def _on_rollback(self, conn: Connection) -> None:
        self._writing.discard(conn)  # not `conn.info`: it raises on an invalidated connection

    def _on_error(self, context: Any) -> None:
        reason = storage_full(context.original_exception)
        if reason is not None:
            if self.full is None:
                self.since = datetime.now(UTC)
            self.full = reason
