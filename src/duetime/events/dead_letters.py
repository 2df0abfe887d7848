"""Events Dapr moved to the dead-letter topic, kept for an operator: listed, replayed to the
topic they were published on, or discarded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.db.helpers import upsert_insert
from duetime.db.tables import event_dead_letters as x_table
from duetime.tasks.model import new_id


@dataclass(frozen=True)
class DeadEvent:
    id: str
    event_id: str
    pubsub: str
    topic: str
    type: str | None
    body: dict[str, Any]
    first_us: int
    last_us: int
    times: int
    replays: int
    replayed_us: int | None


class SqlEventDeadLetters:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, pubsub: str, topic: str, body: dict[str, Any], now_us: int) -> None:
        """Keep an event that reached the dead-letter topic; the same event again (a replay
        that failed too) counts once more and waits for the operator again."""
        event_id = str(body.get("id") or new_id())[:200]
        kind = body.get("type")
        values = {
            "id": new_id(),
            "event_id": event_id,
            "pubsub": pubsub,
            "topic": topic,
            "type": kind[:200] if isinstance(kind, str) else None,
            "body": json.dumps(body, separators=(",", ":")),
            "first_us": now_us,
            "last_us": now_us,
            "times": 1,
            "replays": 0,
            "replayed_us": None,
        }
        async with self._engine.begin() as conn:
            insert = upsert_insert(conn, x_table)
            await conn.execute(
                insert.values(values).on_conflict_do_update(
                    index_elements=["event_id"],
                    set_={
                        "last_us": now_us,
                        "times": x_table.c.times + 1,
                        "replayed_us": None,
                        "body": values["body"],
                    },
                )
            )

    async def page(self, *, limit: int, include_replayed: bool = False) -> list[DeadEvent]:
        c = x_table.c
        stmt = select(x_table).order_by(c.last_us, c.id).limit(limit)
        if not include_replayed:
            stmt = stmt.where(c.replayed_us.is_(None))
        async with self._engine.connect() as conn:
            return [_dead(r) for r in await conn.execute(stmt)]

    async def get(self, dead_id: str) -> DeadEvent | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(x_table).where(x_table.c.id == dead_id))).first()
        return None if row is None else _dead(row)

    async def mark_replayed(self, dead_id: str, now_us: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(x_table)
                .where(x_table.c.id == dead_id)
                .values(replays=x_table.c.replays + 1, replayed_us=now_us)
            )

    async def discard(self, dead_id: str) -> bool:
        async with self._engine.begin() as conn:
            gone = await conn.execute(delete(x_table).where(x_table.c.id == dead_id))
        return bool(gone.rowcount)


def _dead(r: Row[Any]) -> DeadEvent:
    return DeadEvent(
        r.id,
        r.event_id,
        r.pubsub,
        r.topic,
        r.type,
        json.loads(r.body),
        r.first_us,
        r.last_us,
        r.times,
        r.replays,
        r.replayed_us,
    )
