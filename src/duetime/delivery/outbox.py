"""What a reminder reaching the inbox writes, in the same transaction as the notification:
its `reminder.due` event and one delivery row per enabled external channel. The rows are
unique per (notification, channel), so a duplicate trigger never adds a second delivery."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from duetime.db.helpers import chunks, upsert_insert
from duetime.db.tables import channel_settings as s_table
from duetime.db.tables import deliveries as d_table
from duetime.delivery.model import RetryPolicy
from duetime.events.model import OutgoingEvent, reminder_event
from duetime.events.store import write_events
from duetime.tasks.model import new_id
from duetime.timefmt import format_rfc3339, from_micros


def due_event(note: dict[str, Any]) -> OutgoingEvent:
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


class DeliveryOutbox:
    """The task store's fire hook (see `SqlTaskStore`)."""

    def __init__(self, policy: RetryPolicy, *, email_available: bool) -> None:
        self._policy = policy
        self._email_available = email_available

    async def __call__(self, conn: AsyncConnection, notes: Sequence[dict[str, Any]]) -> None:
        if not notes:
            return
        events = [due_event(n) for n in notes]
        now_us = max(n["fired_us"] for n in notes)
        await write_events(conn, events, now_us)
        users = sorted({n["user_id"] for n in notes})
        settings: dict[str, Any] = {}
        for chunk in chunks(users):
            rows = await conn.execute(select(s_table).where(s_table.c.user_id.in_(chunk)))
            settings.update({r.user_id: r for r in rows})
        rows_out: list[dict[str, Any]] = []
        for note, event in zip(notes, events, strict=True):
            row = settings.get(note["user_id"])
            if row is None:
                continue
            payload = json.dumps(event.body, separators=(",", ":"))
            targets = []
            if row.webhook_enabled and row.webhook_url:
                targets.append(("webhook", row.webhook_url))
            if row.email_enabled and row.email and self._email_available:
                targets.append(("email", row.email))
            for channel, target in targets:
                rows_out.append(
                    {
                        "id": new_id(),
                        "notification_id": note["id"],
                        "user_id": note["user_id"],
                        "channel": channel,
                        "target": target,
                        "event_id": event.id,
                        "payload": payload,
                        "state": "pending",
                        "attempts": 0,
                        "attempt_limit": self._policy.max_attempts,
                        "next_attempt_us": note["fired_us"],
                        "created_us": note["fired_us"],
                        "updated_us": note["fired_us"],
                        "replays": 0,
                    }
                )
        insert = upsert_insert(conn, d_table).on_conflict_do_nothing(
            index_elements=["notification_id", "channel"]
        )
        for chunk in chunks(rows_out):
            await conn.execute(insert, chunk)
