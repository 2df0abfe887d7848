"""Small SQL helpers shared by duetime's stores."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

BATCH = 500  # rows or parameters per statement: well under SQLite's and asyncpg's limits


def chunks(items: list[T], size: int = BATCH) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def upsert_insert(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing/do_update` on both databases."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
