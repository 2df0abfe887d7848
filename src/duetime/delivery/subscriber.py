"""The notifier's side of Dapr pub/sub: a `reminder.due` event received through the sidecar
becomes the reminder's deliveries (the fan-out the embedded path does when it fires).

Idempotent per event: deliveries are unique per (notification, channel) and the event's id
is the notification's id, so a redelivered event, or the same event reaching two worker
replicas, never adds a second webhook or email. Events arriving together are written in one
transaction (group commit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.db.batch import Batcher
from duetime.db.helpers import chunks
from duetime.db.tables import notifications as n_table
from duetime.delivery.model import RetryPolicy
from duetime.delivery.outbox import CLOUD_EVENT_KEYS, Due, write_deliveries
from duetime.events.model import TYPE_PREFIX
from duetime.timefmt import parse_rfc3339, to_micros

DUE_TYPE = TYPE_PREFIX + "reminder.due"


class PoisonEvent(ValueError):
    """The event cannot be a `reminder.due` duetime wrote: retrying will not help, so it
    goes to the dead-letter topic once the retries are spent."""


def parse_due(envelope: Any) -> Due:
    """The reminder an event announces; the body kept is duetime's CloudEvent, without the
    attributes the sidecar added."""
    if not isinstance(envelope, Mapping):
        raise PoisonEvent("the event is not a JSON object")
    if envelope.get("type") != DUE_TYPE:
        raise PoisonEvent(f"the event's type is {envelope.get('type')!r}, not {DUE_TYPE!r}")
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        raise PoisonEvent("the event has no data object")
    event_id, note_id, user_id = (
        envelope.get("id"),
        data.get("notification_id"),
        data.get("user_id"),
    )
    for field, value in (("id", event_id), ("notification_id", note_id), ("user_id", user_id)):
        if not isinstance(value, str) or not value:
            raise PoisonEvent(f"the event's {field} is missing or not a string")
    if note_id != event_id:
        raise PoisonEvent("the event's id is not its notification's id")
    fired = data.get("fired_at")
    try:
        fired_us = to_micros(parse_rfc3339(fired)) if isinstance(fired, str) else None
    except ValueError:
        fired_us = None
    if fired_us is None:
        raise PoisonEvent(f"the event's fired_at is not an RFC 3339 time: {fired!r}")
    body = {k: envelope[k] for k in CLOUD_EVENT_KEYS if k in envelope}
    return Due(str(note_id), str(user_id), fired_us, body)


class FanOut:
    def __init__(
        self,
        engine: AsyncEngine,
        policy: RetryPolicy,
        *,
        email_available: bool,
        kick: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._email_available = email_available
        self._kick = kick
        self._batch: Batcher[Due, bool] = Batcher(self._flush)

    async def receive(self, envelope: Any) -> bool:
        """Write the deliveries of one `reminder.due`. False: its notification is not in the
        inbox (deleted with its task since), so there is nothing to send. Raises
        `PoisonEvent`, or the database's error (retry)."""
        return await self._batch.submit(parse_due(envelope))

    async def _flush(self, dues: list[Due]) -> list[bool]:
        async with self._engine.begin() as conn:
            known: set[str] = set()
            for chunk in chunks(sorted({d.notification_id for d in dues})):
                known.update(
                    await conn.scalars(select(n_table.c.id).where(n_table.c.id.in_(chunk)))
                )
            await write_deliveries(
                conn,
                [d for d in dues if d.notification_id in known],
                self._policy,
                email_available=self._email_available,
            )
        self._kick()
        return [d.notification_id in known for d in dues]

    async def aclose(self) -> None:
        await self._batch.close()
