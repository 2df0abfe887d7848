"""The embedded broker's rows in duetime's database (SQLite or PostgreSQL).

Like a Redis stream with one consumer group per app: a published message is one
`pubsub_messages` row, and one `pubsub_deliveries` row per app that has a group on its
topic (`pubsub_groups`), written in the same transaction. A group created later (an app
subscribes for the first time) gets rows for every message of the topic still kept, as a
Redis group created at `0` reads the stream from its start. Deliveries are claimed with a
lease (a crash mid-delivery makes them due again when it ends: at least once), and end
`done`, `dead` (sent to the dead-letter topic, in the same transaction), or `dropped`.
Finished rows and their messages are purged after the retention period.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import bindparam, delete, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from duetime.db.batch import Batcher
from duetime.db.helpers import chunks, upsert_insert
from duetime.db.tables import pubsub_deliveries as d_table
from duetime.db.tables import pubsub_groups as g_table
from duetime.db.tables import pubsub_messages as m_table

State = Literal["done", "retry", "dead", "dropped"]
_CATCH_UP_US = 60_000_000


@dataclass(frozen=True)
class Outgoing:
    """A message to store: `data` as the subscribers' component would hold it (the
    CloudEvent JSON, or the raw payload) and the publish request's metadata."""

    pubsub: str
    topic: str
    data: bytes
    metadata: dict[str, str]


@dataclass(frozen=True)
class Claimed:
    id: int
    message_seq: int
    app_id: str
    pubsub: str
    topic: str
    attempts: int
    """Attempts made before this one."""
    data: bytes
    metadata: dict[str, str]
    created_us: int


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    state: State
    now_us: int
    attempts: int
    """Attempts made, counting this one (a postponed delivery keeps its count)."""
    next_attempt_us: int = 0
    error: str | None = None
    dead_letter: Outgoing | None = None


class SqlPubSubStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writes: Batcher[tuple[list[Outgoing], int, int | None], list[Claimed]] = Batcher(
            self._write_batch
        )

    async def close(self) -> None:
        await self._writes.close()

    # -- publishing ----------------------------------------------------------------------
    async def write(
        self, messages: list[Outgoing], now_us: int, *, lease_us: int | None = None
    ) -> list[Claimed]:
        """Store `messages` (all or none) and their deliveries; returns once committed.
        Concurrent callers share one transaction. With `lease_us`, the deliveries come back
        leased to the caller (see `write_messages`)."""
        return await self._writes.submit((messages, now_us, lease_us))

    async def _write_batch(
        self, batch: list[tuple[list[Outgoing], int, int | None]]
    ) -> list[list[Claimed]]:
        messages = [m for ms, _, _ in batch for m in ms]
        leases = {lease for _, _, lease in batch}
        lease = leases.pop() if len(leases) == 1 else None
        async with self._engine.begin() as conn:  # two statements for the whole batch
            claimed = await write_messages(
                conn, messages, max(now for _, now, _ in batch), lease_us=lease
            )
        owner = {id(m): i for i, (ms, _, _) in enumerate(batch) for m in ms}
        results: list[list[Claimed]] = [[] for _ in batch]
        for msg, delivery in claimed:
            results[owner[id(msg)]].append(delivery)
        return results

    # -- groups --------------------------------------------------------------------------
    async def ensure_group(self, app_id: str, pubsub: str, topic: str, now_us: int) -> int:
        """Create the app's group on the topic if it has none, with deliveries for the
        topic's kept messages; run again on an existing group, it adds rows for the
        messages of the last minute that have none (a publish that committed while the
        group was created). Returns the deliveries added."""
        async with self._engine.begin() as conn:
            created = await conn.execute(
                upsert_insert(conn, g_table).on_conflict_do_nothing(),
                {"app_id": app_id, "pubsub": pubsub, "topic": topic, "created_us": now_us},
            )
            m = m_table.c
            rows = select(
                m.seq,
                literal(app_id),
                m.pubsub,
                m.topic,
                literal("pending"),
                literal(0),
                literal(now_us),
                literal(now_us),
            ).where(m.pubsub == pubsub, m.topic == topic)
            if created.rowcount != 1:  # an existing group: only the publishes of late
                rows = rows.where(m.created_us >= now_us - _CATCH_UP_US)
            stmt = (
                upsert_insert(conn, d_table)
                .from_select(_DELIVERY_COLUMNS, rows)
                .on_conflict_do_nothing(index_elements=["message_seq", "app_id"])
            )
            result = await conn.execute(stmt)
        return max(int(result.rowcount or 0), 0)

    # -- delivering ----------------------------------------------------------------------
    async def claim(self, now_us: int, limit: int, lease_us: int) -> list[Claimed]:
        """Up to `limit` due pending deliveries, oldest first, leased until
        `now_us + lease_us`."""
        d, m = d_table.c, m_table.c
        stmt = (
            select(
                d.id,
                d.message_seq,
                d.app_id,
                d.pubsub,
                d.topic,
                d.attempts,
                m.data,
                m.metadata,
                m.created_us,
            )
            .join(m_table, m.seq == d.message_seq)
            .where(d.state == "pending", d.next_attempt_us <= now_us)
            .order_by(d.next_attempt_us, d.id)
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update(of=d_table, skip_locked=True)
            rows = list(await conn.execute(stmt))
            for chunk in chunks([r.id for r in rows]):
                await conn.execute(
                    update(d_table).where(d.id.in_(chunk)).values(next_attempt_us=now_us + lease_us)
                )
        return [
            Claimed(
                r.id,
                r.message_seq,
                r.app_id,
                r.pubsub,
                r.topic,
                r.attempts,
                bytes(r.data),
                json.loads(r.metadata),
                r.created_us,
            )
            for r in rows
        ]

    async def release(self, ids: Sequence[int], now_us: int) -> None:
        """End the lease of claimed deliveries that were not attempted (a clean stop):
        due again now rather than when the lease runs out."""
        d = d_table.c
        async with self._engine.begin() as conn:
            for chunk in chunks(list(ids)):
                await conn.execute(
                    update(d_table)
                    .where(d.id.in_(chunk), d.state == "pending", d.next_attempt_us > now_us)
                    .values(next_attempt_us=now_us)
                )

    async def next_due_us(self) -> int | None:
        d = d_table.c
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.min(d.next_attempt_us)).where(d.state == "pending")
            )
        return None if value is None else int(value)

    async def record_many(self, outcomes: list[Outcome]) -> None:
        """Write attempts' outcomes (and their dead letters) in one transaction."""
        d = d_table.c
        done = [o for o in outcomes if o.state == "done"]
        others = [o for o in outcomes if o.state != "done"]
        async with self._engine.begin() as conn:
            now_us = max(o.now_us for o in outcomes)
            for ids in chunks([o.claimed.id for o in done]):
                await conn.execute(
                    update(d_table)
                    .where(d.id.in_(ids))
                    .values(state="done", attempts=d.attempts + 1, updated_us=now_us)
                )
            if others:
                await conn.execute(
                    _RECORD,
                    [
                        {
                            "b_id": o.claimed.id,
                            "b_state": "pending" if o.state == "retry" else o.state,
                            "b_attempts": o.attempts,
                            "b_next": o.next_attempt_us if o.state == "retry" else o.now_us,
                            "b_now": o.now_us,
                            "b_error": o.error,
                        }
                        for o in others
                    ],
                )
            letters = [o.dead_letter for o in others if o.dead_letter is not None]
            if letters:
                await write_messages(conn, letters, now_us)

    async def purge(self, before_us: int) -> int:
        """Delete finished deliveries and messages without pending ones, older than
        `before_us`. Returns the messages deleted."""
        d, m = d_table.c, m_table.c
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(d_table).where(d.state != "pending", d.updated_us < before_us)
            )
            pending = exists().where(d.message_seq == m.seq, d.state == "pending")
            result = await conn.execute(delete(m_table).where(m.created_us < before_us, ~pending))
        return max(int(result.rowcount or 0), 0)

    async def counts(self) -> dict[str, int]:
        """Deliveries by state (for tests and operators)."""
        d = d_table.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(d.state, func.count()).group_by(d.state))
            return {str(state): int(n) for state, n in rows}


_DELIVERY_COLUMNS = [
    "message_seq",
    "app_id",
    "pubsub",
    "topic",
    "state",
    "attempts",
    "next_attempt_us",
    "updated_us",
]

_RECORD = (
    update(d_table)
    .where(d_table.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        attempts=bindparam("b_attempts"),
        next_attempt_us=bindparam("b_next"),
        updated_us=bindparam("b_now"),
        last_error=bindparam("b_error"),
    )
)


async def write_messages(
    conn: AsyncConnection,
    messages: Sequence[Outgoing],
    now_us: int,
    *,
    lease_us: int | None = None,
) -> list[tuple[Outgoing, Claimed]]:
    """Insert `messages` and a pending delivery for each group on their topics, in the
    caller's transaction. With `lease_us`, the deliveries are written already leased to the
    caller (due then, not now) and returned with their message, so it can send them
    without claiming them."""
    if not messages:
        return []
    rows = [
        {
            "pubsub": msg.pubsub,
            "topic": msg.topic,
            "data": msg.data,
            "metadata": json.dumps(msg.metadata, separators=(",", ":")),
            "created_us": now_us,
        }
        for msg in messages
    ]
    seqs: list[int] = []
    statement = insert(m_table).returning(m_table.c.seq)
    for chunk in chunks(rows):
        result = await conn.execute(statement, chunk)
        seqs += [int(s) for s in result.scalars()]
    # One statement per chunk, rows numbered in VALUES order (SQLite's single writer; a
    # PostgreSQL sequence called row after row): ascending seqs are the messages' order.
    # (RETURNING's own order is unspecified; `sort_by_parameter_order` halved the rate.)
    seqs.sort()
    by_seq = dict(zip(seqs, messages, strict=True))
    due_us = now_us if lease_us is None else now_us + lease_us
    m, g, d = m_table.c, g_table.c, d_table.c
    claimed: list[tuple[Outgoing, Claimed]] = []
    for chunk_seqs in chunks(seqs):
        fan_out = (
            select(
                m.seq,
                g.app_id,
                m.pubsub,
                m.topic,
                literal("pending"),
                literal(0),
                literal(due_us),
                literal(now_us),
            )
            .join(g_table, (g.pubsub == m.pubsub) & (g.topic == m.topic))
            .where(m.seq.in_(chunk_seqs))
        )
        stmt = insert(d_table).from_select(_DELIVERY_COLUMNS, fan_out)
        if lease_us is None:
            await conn.execute(stmt)
            continue
        for row in await conn.execute(stmt.returning(d.id, d.message_seq, d.app_id)):
            msg = by_seq[int(row.message_seq)]
            delivery = Claimed(
                int(row.id),
                int(row.message_seq),
                row.app_id,
                msg.pubsub,
                msg.topic,
                0,
                msg.data,
                msg.metadata,
                now_us,
            )
            claimed.append((msg, delivery))
    return claimed
