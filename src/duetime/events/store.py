"""The event outbox and log in the app's SQL database.

`write_events` runs inside the caller's transaction (the transactional outbox). Each row gets
its place in the log (`seq`) in one transaction, so readers of the log never see a gap
filled in later: on SQLite as it is written (there is one writer), on PostgreSQL (concurrent
writers commit out of id order) from the relay. The relay then publishes, and records that
it did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from duetime.db.helpers import chunks
from duetime.db.tables import events as e_table
from duetime.events.model import OutgoingEvent, PublishedEvent


async def write_events(conn: AsyncConnection, events: Sequence[OutgoingEvent], now_us: int) -> None:
    """Insert `events` in the caller's transaction, with multi-row statements."""
    rows = [
        {
            "event_id": e.id,
            "user_id": e.user_id,
            "topic": e.topic,
            "type": e.type,
            "body": json.dumps(e.body, separators=(",", ":")),
            "created_us": now_us,
        }
        for e in events
    ]
    statement = insert(e_table)
    if conn.dialect.name == "sqlite":
        # One writer at a time: the log order is the commit order, so each event takes its
        # place (`seq`) as it is written and the relay only publishes. This relies on
        # executemany, one row per execution, each subquery seeing the rows before it: in a
        # multi-row VALUES (what SQLAlchemy renders with RETURNING) SQLite would evaluate
        # the subquery once and every row would get the same seq.
        top = select(func.coalesce(func.max(e_table.c.seq), 0) + 1).scalar_subquery()
        statement = statement.values(seq=top)
    for chunk in chunks(rows):
        await conn.execute(statement, chunk)


class SqlEventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def sequence_pending(self, limit: int) -> list[PublishedEvent]:
        """The oldest unpublished events in log order, giving a `seq` to those without one.
        Raises (IntegrityError) if another relay sequenced concurrently: retry."""
        c = e_table.c
        async with self._engine.begin() as conn:
            rows = list(
                await conn.execute(
                    select(c.id, c.seq, c.user_id, c.topic, c.body)
                    .where(c.published_us.is_(None))
                    .order_by(c.id)
                    .limit(limit)
                )
            )
            if not rows:
                return []
            fresh = [r.id for r in rows if r.seq is None]
            assigned: dict[int, int] = {}
            if fresh:
                # seq = id + shift: increasing in id order, above every seq given so far
                # (gaps are fine), set with one statement per chunk.
                top = (await conn.execute(select(func.max(c.seq)))).scalar() or 0
                shift = top + 1 - fresh[0]
                assigned = {i: i + shift for i in fresh}
                for chunk in chunks(fresh):
                    await conn.execute(
                        update(e_table).where(c.id.in_(chunk)).values(seq=c.id + shift)
                    )
        found = [
            PublishedEvent(
                r.seq if r.seq is not None else assigned[r.id],
                r.user_id,
                r.topic,
                json.loads(r.body),
            )
            for r in rows
        ]
        return sorted(found, key=lambda e: e.seq)

    async def mark_published(self, seqs: Sequence[int], now_us: int) -> None:
        async with self._engine.begin() as conn:
            for chunk in chunks(list(seqs)):
                await conn.execute(
                    update(e_table).where(e_table.c.seq.in_(chunk)).values(published_us=now_us)
                )

    async def unpublished(self) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(e_table).where(e_table.c.published_us.is_(None))
            )
        return int(count or 0)

    async def recent(self, *, before: int | None, limit: int) -> list[PublishedEvent]:
        """Every user's published events, newest first, `seq` < `before` (the operator's
        view of the log)."""
        c = e_table.c
        stmt: Any = select(c.seq, c.user_id, c.topic, c.body).where(c.seq.is_not(None))
        if before is not None:
            stmt = stmt.where(c.seq < before)
        stmt = stmt.order_by(c.seq.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [
                PublishedEvent(r.seq, r.user_id, r.topic, json.loads(r.body))
                for r in await conn.execute(stmt)
            ]

    async def read(
        self,
        user_id: str,
        *,
        after: int,
        limit: int,
        topic: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[PublishedEvent]:
        """The user's events in the log after `after`, oldest first."""
        c = e_table.c
        stmt: Any = select(c.seq, c.user_id, c.topic, c.body).where(
            c.user_id == user_id, c.seq.is_not(None), c.seq > after
        )
        if topic is not None:
            stmt = stmt.where(c.topic == topic)
        if types:
            stmt = stmt.where(c.type.in_(list(types)))
        stmt = stmt.order_by(c.seq).limit(limit)
        async with self._engine.connect() as conn:
            return [
                PublishedEvent(r.seq, r.user_id, r.topic, json.loads(r.body))
                for r in await conn.execute(stmt)
            ]

    async def last_seq(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.scalar(select(func.max(e_table.c.seq)))) or 0)
