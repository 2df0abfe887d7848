"""Push subscriptions in the app's SQL database (`push_subscriptions`)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.db.helpers import upsert_insert
from duetime.db.tables import push_subscriptions as p_table
from duetime.delivery.push_model import PushSubscription
from duetime.tasks.model import new_id

MAX_PER_USER = 100
"""Devices one user may register; the oldest goes when a new one would pass it."""


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


class SqlPushSubscriptionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(
        self, user_id: str, endpoint: str, p256dh: str, auth: str, label: str | None, now_us: int
    ) -> tuple[PushSubscription, bool]:
        """Store a subscription; (it, True when it is new). The endpoint is the key: the same
        endpoint again (a re-subscribe, or another user signing in on that browser) updates
        the keys and owner of the one row, keeping its id."""
        c = p_table.c
        digest = endpoint_hash(endpoint)
        new = new_id()
        values: dict[str, Any] = {
            "user_id": user_id,
            "endpoint": endpoint,
            "p256dh": p256dh,
            "auth": auth,
            "label": label,
            "updated_us": now_us,
        }
        async with self._engine.begin() as conn:
            stmt = upsert_insert(conn, p_table).values(
                id=new, endpoint_hash=digest, created_us=now_us, **values
            )
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["endpoint_hash"], set_=values)
            )
            row = (await conn.execute(select(p_table).where(c.endpoint_hash == digest))).one()
            ids = list(
                await conn.scalars(
                    select(c.id)
                    .where(c.user_id == user_id)
                    .order_by(c.created_us.desc(), c.id.desc())
                    .offset(MAX_PER_USER)
                )
            )
            if ids:
                await conn.execute(delete(p_table).where(c.id.in_(ids)))
        return _subscription(row), row.id == new

    async def of_user(self, user_id: str) -> list[PushSubscription]:
        c = p_table.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(p_table).where(c.user_id == user_id).order_by(c.created_us, c.id)
            )
            return [_subscription(r) for r in rows]

    async def get(self, subscription_id: str) -> PushSubscription | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(p_table).where(p_table.c.id == subscription_id))
            ).first()
        return None if row is None else _subscription(row)

    async def delete(self, subscription_id: str, user_id: str | None = None) -> bool:
        """Remove it (only if it is `user_id`'s, when given); whether it was there."""
        c = p_table.c
        stmt = delete(p_table).where(c.id == subscription_id)
        if user_id is not None:
            stmt = stmt.where(c.user_id == user_id)
        async with self._engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def delete_endpoint(self, subscription_id: str, endpoint: str) -> bool:
        """Remove the subscription if it still has `endpoint` (the push service said it is
        gone; a re-subscribe since then gave the row a new endpoint and keeps it)."""
        c = p_table.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(p_table).where(c.id == subscription_id, c.endpoint == endpoint)
            )
            return bool(result.rowcount)

    async def mark(self, subscription_id: str, now_us: int, error: str | None) -> None:
        """Note the outcome of a push: its time, and the error when it failed."""
        values: dict[str, Any] = (
            {"last_success_us": now_us, "last_error": None}
            if error is None
            else {"last_failure_us": now_us, "last_error": error[:500]}
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                update(p_table).where(p_table.c.id == subscription_id).values(**values)
            )


def _subscription(r: Row[Any]) -> PushSubscription:
    return PushSubscription(
        id=r.id,
        user_id=r.user_id,
        endpoint=r.endpoint,
        p256dh=r.p256dh,
        auth=r.auth,
        label=r.label,
        created_us=r.created_us,
        updated_us=r.updated_us,
        last_success_us=r.last_success_us,
        last_failure_us=r.last_failure_us,
        last_error=r.last_error,
    )
