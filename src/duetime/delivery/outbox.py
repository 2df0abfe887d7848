"""What a reminder reaching the inbox writes: its `reminder.due` event, and one delivery row
per enabled external channel (the fan-out), for Web Push one per registered device.

Where the fan-out runs depends on the event publisher. Embedded (and Kafka): in the same
transaction as the notification (`DeliveryOutbox(fan_out=True)`). Dapr pub/sub: the worker
receives `reminder.due` through its sidecar and writes the rows then (`FanOut`), with the
same `write_deliveries`. The rows are unique per (notification, channel, device: the push
subscription, "" for the others), so a duplicate trigger or a redelivered event never adds a
second delivery.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from duetime.db.helpers import chunks, upsert_insert
from duetime.db.tables import channel_settings as s_table
from duetime.db.tables import deliveries as d_table
from duetime.db.tables import push_subscriptions as p_table
from duetime.delivery.model import RetryPolicy
from duetime.events.model import OutgoingEvent, reminder_event
from duetime.events.store import write_events
from duetime.tasks.model import new_id
from duetime.timefmt import format_rfc3339, from_micros

CLOUD_EVENT_KEYS = (
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "subject",
    "data",
)
"""The attributes duetime writes. A Dapr sidecar adds its own (`topic`, `traceparent`, …);
the webhook body is duetime's event, whichever path it took."""


def due_event(note: Mapping[str, Any]) -> OutgoingEvent:
    """The `reminder.due` event of a notification row; its id is the notification's id, so
    the event (and each webhook body) is stable whoever builds it."""
    data = {
        "notification_id": note["id"],
        "user_id": note["user_id"],
        "task_id": note["task_id"],
        "reminder_id": note["reminder_id"],
        "title": note["title"],
        "message": note["message"],
        "scheduled_for": format_rfc3339(from_micros(note["scheduled_us"])),
        "fired_at": format_rfc3339(from_micros(note["fired_us"])),
        "lateness_ms": note["lateness_ms"],
        "late": note.get("late", False),
    }
    return reminder_event(
        "due",
        user_id=note["user_id"],
        task_id=note["task_id"],
        time=from_micros(note["fired_us"]),
        data=data,
        event_id=note["id"],
    )


@dataclass(frozen=True)
class Due:
    """A `reminder.due` to fan out: whose, for which notification, fired when, the
    CloudEvent that each channel sends, and the trace context of its fire (each delivery
    attempt's span is a child of it)."""

    notification_id: str
    user_id: str
    fired_us: int
    body: Mapping[str, Any]
    trace_context: str | None = None


async def write_deliveries(
    conn: AsyncConnection, dues: Sequence[Due], policy: RetryPolicy, *, email_available: bool
) -> None:
    """One pending delivery per enabled channel of each reminder's user (push: per device),
    in the caller's transaction; rows already there (a redelivery) are left alone."""
    if not dues:
        return
    users = sorted({d.user_id for d in dues})
    settings: dict[str, Any] = {}
    for chunk in chunks(users):
        rows = await conn.execute(select(s_table).where(s_table.c.user_id.in_(chunk)))
        settings.update({r.user_id: r for r in rows})
    devices: dict[str, list[tuple[str, str]]] = {}  # user -> [(subscription id, endpoint)]
    pushing = sorted(u for u, r in settings.items() if r.push_enabled)
    for chunk in chunks(pushing):
        found = await conn.execute(
            select(p_table.c.user_id, p_table.c.id, p_table.c.endpoint)
            .where(p_table.c.user_id.in_(chunk))
            .order_by(p_table.c.created_us, p_table.c.id)
        )
        for r in found:
            devices.setdefault(r.user_id, []).append((r.id, r.endpoint))
    rows_out: list[dict[str, Any]] = []
    for due in dues:
        row = settings.get(due.user_id)
        if row is None:
            continue
        targets = []  # (channel, target, device)
        if row.webhook_enabled and row.webhook_url:
            targets.append(("webhook", row.webhook_url, ""))
        if row.email_enabled and row.email and email_available:
            targets.append(("email", row.email, ""))
        for device, endpoint in devices.get(due.user_id, []):
            targets.append(("push", endpoint, device))
        payload = json.dumps(dict(due.body), separators=(",", ":"))
        for channel, target, device in targets:
            rows_out.append(
                {
                    "id": new_id(),
                    "notification_id": due.notification_id,
                    "user_id": due.user_id,
                    "channel": channel,
                    "target": target,
                    "event_id": str(due.body["id"]),
                    "payload": payload,
                    "state": "pending",
                    "attempts": 0,
                    "attempt_limit": policy.max_attempts,
                    "next_attempt_us": due.fired_us,
                    "created_us": due.fired_us,
                    "updated_us": due.fired_us,
                    "replays": 0,
                    "trace_context": due.trace_context,
                    "device": device,
                }
            )
    insert = upsert_insert(conn, d_table).on_conflict_do_nothing(
        index_elements=["notification_id", "channel", "device"]
    )
    for part in chunks(rows_out):
        await conn.execute(insert, part)


class DeliveryOutbox:
    """The task store's fire hook (see `SqlTaskStore`): the events, and the fan-out unless a
    subscriber does it (`fan_out=False`)."""

    def __init__(self, policy: RetryPolicy, *, email_available: bool, fan_out: bool = True) -> None:
        self._policy = policy
        self._email_available = email_available
        self._fan_out = fan_out

    async def __call__(self, conn: AsyncConnection, notes: Sequence[dict[str, Any]]) -> None:
        if not notes:
            return
        events = [due_event(n) for n in notes]
        await write_events(conn, events, max(n["fired_us"] for n in notes))
        if self._fan_out:
            dues = [
                Due(n["id"], n["user_id"], n["fired_us"], e.body, n.get("trace_context"))
                for n, e in zip(notes, events, strict=True)
            ]
            await write_deliveries(conn, dues, self._policy, email_available=self._email_available)
