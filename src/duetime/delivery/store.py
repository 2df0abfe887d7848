"""Channel settings, deliveries and their attempts in the app's SQL database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.db.batch import Batcher
from duetime.db.helpers import chunks, upsert_insert
from duetime.db.tables import channel_settings as s_table
from duetime.db.tables import deliveries as d_table
from duetime.db.tables import delivery_attempts as a_table
from duetime.delivery.model import (
    Attempt,
    ChannelSettings,
    Claimed,
    Delivery,
    DeliveryState,
)
from duetime.events.model import OutgoingEvent
from duetime.events.store import write_events


@dataclass(frozen=True)
class Result:
    """An attempt's record and the delivery's state after it."""

    claimed: Claimed
    attempt: Attempt
    state: DeliveryState
    next_attempt_us: int
    event: OutgoingEvent | None  # reminder.delivered / reminder.failed


class ReplayConflict(Exception):
    """The delivery is not a dead letter (any more): it is pending or delivered."""


_RECORD = (  # a retry or a dead letter
    update(d_table)
    .where(d_table.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        attempts=bindparam("b_attempts"),
        next_attempt_us=bindparam("b_next"),
        updated_us=bindparam("b_now"),
        delivered_us=bindparam("b_delivered"),
        last_error=bindparam("b_error"),
    )
)


class SqlDeliveryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._results: Batcher[Result, None] = Batcher(self._record_batch)

    async def close(self) -> None:
        await self._results.close()

    # -- channel settings ------------------------------------------------------------------
    async def settings(self, user_id: str, new_secret: str, now_us: int) -> ChannelSettings:
        """The user's settings, created (all external channels off) on first use."""
        async with self._engine.begin() as conn:
            await conn.execute(
                upsert_insert(conn, s_table).on_conflict_do_nothing(index_elements=["user_id"]),
                {
                    "user_id": user_id,
                    "webhook_enabled": False,
                    "webhook_secret": new_secret,
                    "email_enabled": False,
                    "push_enabled": False,
                    "updated_us": now_us,
                },
            )
            row = (await conn.execute(select(s_table).where(s_table.c.user_id == user_id))).one()
        return _settings(row)

    async def save_settings(self, settings: ChannelSettings, now_us: int) -> None:
        values = {
            "webhook_url": settings.webhook_url,
            "webhook_enabled": settings.webhook_enabled,
            "webhook_secret": settings.webhook_secret,
            "email": settings.email,
            "email_enabled": settings.email_enabled,
            "push_enabled": settings.push_enabled,
            "updated_us": now_us,
        }
        async with self._engine.begin() as conn:
            stmt = upsert_insert(conn, s_table).values(user_id=settings.user_id, **values)
            await conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=values))

    # -- the worker ------------------------------------------------------------------------
    async def claim(self, now_us: int, limit: int, lease_us: int) -> list[Claimed]:
        """Up to `limit` due pending deliveries, leased until `now_us + lease_us` (a crash
        mid-attempt makes them due again then)."""
        c = d_table.c
        stmt = (
            select(d_table, s_table.c.webhook_secret)
            .join(s_table, s_table.c.user_id == c.user_id, isouter=True)
            .where(c.state == "pending", c.next_attempt_us <= now_us)
            .order_by(c.next_attempt_us, c.id)
            .limit(limit)
        )
        async with self._engine.begin() as conn:
            rows = list(await conn.execute(stmt))
            claimed: list[Claimed] = []
            for chunk in chunks(rows):
                result = await conn.execute(
                    update(d_table)
                    .where(
                        c.id.in_([r.id for r in chunk]),
                        c.state == "pending",
                        c.next_attempt_us <= now_us,
                    )
                    .values(next_attempt_us=now_us + lease_us)
                )
                if result.rowcount != len(chunk):  # another replica took some: keep ours
                    taken = set(
                        await conn.scalars(
                            select(c.id).where(
                                c.id.in_([r.id for r in chunk]),
                                c.next_attempt_us == now_us + lease_us,
                            )
                        )
                    )
                    chunk = [r for r in chunk if r.id in taken]
                claimed += [Claimed(_delivery(r), r.webhook_secret or "") for r in chunk]
        return claimed

    async def next_due_us(self) -> int | None:
        c = d_table.c
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.min(c.next_attempt_us)).where(c.state == "pending")
            )
        return None if value is None else int(value)

    async def record(self, result: Result) -> None:
        """Write an attempt and its delivery's new state (concurrent calls share one
        transaction)."""
        await self._results.submit(result)

    async def _record_batch(self, results: list[Result]) -> list[None]:
        now_us = max(r.attempt.finished_us for r in results)
        succeeded: dict[int, list[str]] = defaultdict(list)  # by attempt number
        for r in results:
            if r.state == "delivered":
                succeeded[r.attempt.attempt].append(r.claimed.delivery.id)
        params = [
            {
                "b_id": r.claimed.delivery.id,
                "b_state": r.state,
                "b_attempts": r.attempt.attempt,
                "b_next": r.next_attempt_us,
                "b_now": r.attempt.finished_us,
                "b_delivered": None,
                "b_error": r.attempt.error,
            }
            for r in results
            if r.state != "delivered"
        ]
        attempts = [
            {
                "delivery_id": r.attempt.delivery_id,
                "user_id": r.claimed.delivery.user_id,
                "channel": r.attempt.channel,
                "attempt": r.attempt.attempt,
                "status": r.attempt.status,
                "error": r.attempt.error,
                "http_status": r.attempt.http_status,
                "started_us": r.attempt.started_us,
                "finished_us": r.attempt.finished_us,
            }
            for r in results
        ]
        async with self._engine.begin() as conn:
            for number, done in succeeded.items():  # the common case: one statement
                for ids in chunks(done):
                    await conn.execute(
                        update(d_table)
                        .where(d_table.c.id.in_(ids))
                        .values(
                            state="delivered",
                            attempts=number,
                            next_attempt_us=now_us,
                            updated_us=now_us,
                            delivered_us=now_us,  # the group commit's time
                            last_error=None,
                        )
                    )
            for rows in chunks(params):
                await conn.execute(_RECORD, rows)
            for rows in chunks(attempts):
                await conn.execute(insert(a_table), rows)
            await write_events(conn, [r.event for r in results if r.event is not None], now_us)
        return [None] * len(results)

    # -- reading and replay ----------------------------------------------------------------
    async def page(
        self,
        user_id: str | None,
        *,
        state: DeliveryState | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[tuple[Delivery, list[Attempt]]]:
        """The user's deliveries (every user's for None: the operator view), newest first,
        each with its attempts (oldest first)."""
        c = d_table.c
        stmt = select(d_table)
        if user_id is not None:
            stmt = stmt.where(c.user_id == user_id)
        if state is not None:
            stmt = stmt.where(c.state == state)
        if after is not None:
            created_us, last_id = after
            stmt = stmt.where(
                or_(c.created_us < created_us, and_(c.created_us == created_us, c.id < last_id))
            )
        stmt = stmt.order_by(c.created_us.desc(), c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            found = [_delivery(r) for r in await conn.execute(stmt)]
            attempts: dict[str, list[Attempt]] = {d.id: [] for d in found}
            for chunk in chunks(list(attempts)):
                rows = await conn.execute(
                    select(a_table)
                    .where(a_table.c.delivery_id.in_(chunk))
                    .order_by(a_table.c.delivery_id, a_table.c.attempt, a_table.c.id)
                )
                for r in rows:
                    attempts[r.delivery_id].append(_attempt(r))
        return [(d, attempts[d.id]) for d in found]

    async def get(self, user_id: str, delivery_id: str) -> Delivery | None:
        c = d_table.c
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(d_table).where(c.id == delivery_id, c.user_id == user_id))
            ).first()
        return None if row is None else _delivery(row)

    async def replay(self, user_id: str, delivery_id: str, now_us: int) -> Delivery | None:
        """Turn a dead letter back into a pending delivery with exactly one more attempt.
        None when there is no such delivery; ReplayConflict when it is not dead (a replay
        already under way, or delivered)."""
        c = d_table.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(d_table)
                .where(c.id == delivery_id, c.user_id == user_id, c.state == "dead")
                .values(
                    state="pending",
                    attempt_limit=c.attempts + 1,
                    next_attempt_us=now_us,
                    updated_us=now_us,
                    replays=c.replays + 1,
                )
            )
            row = (
                await conn.execute(select(d_table).where(c.id == delivery_id, c.user_id == user_id))
            ).first()
        if row is None:
            return None
        if not result.rowcount:
            raise ReplayConflict(f"delivery {delivery_id} is {row.state}, not a dead letter")
        return _delivery(row)

    async def attempts(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(a_table)
                .where(a_table.c.delivery_id.in_(list(delivery_ids)))
                .order_by(a_table.c.id)
            )
            return [_attempt(r) for r in rows]


def _settings(r: Row[Any]) -> ChannelSettings:
    return ChannelSettings(
        user_id=r.user_id,
        webhook_secret=r.webhook_secret,
        webhook_url=r.webhook_url,
        webhook_enabled=r.webhook_enabled,
        email=r.email,
        email_enabled=r.email_enabled,
        push_enabled=r.push_enabled,
    )


def _delivery(r: Row[Any]) -> Delivery:
    return Delivery(
        id=r.id,
        notification_id=r.notification_id,
        user_id=r.user_id,
        channel=r.channel,
        target=r.target,
        event_id=r.event_id,
        payload=r.payload,
        state=r.state,
        attempts=r.attempts,
        attempt_limit=r.attempt_limit,
        next_attempt_us=r.next_attempt_us,
        created_us=r.created_us,
        updated_us=r.updated_us,
        delivered_us=r.delivered_us,
        last_error=r.last_error,
        replays=r.replays,
        trace_context=r.trace_context,
        device=r.device,
    )


def _attempt(r: Row[Any]) -> Attempt:
    return Attempt(
        delivery_id=r.delivery_id,
        channel=r.channel,
        attempt=r.attempt,
        status=r.status,
        error=r.error,
        http_status=r.http_status,
        started_us=r.started_us,
        finished_us=r.finished_us,
    )
