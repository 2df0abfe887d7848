"""Rows ↔ domain objects for the task tables. Instants are BIGINT microseconds (UTC); wall
times are naive ISO text."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.engine import Row

from duetime.tasks.model import Notification, Reminder, ReminderSpec, Series, Task
from duetime.tasks.profile import Profile, QuietHours
from duetime.timefmt import from_micros, to_micros

NO_DUE = 2**62  # sorts tasks without a due time last


def task_values(t: Task) -> dict[str, Any]:
    due_us = _us(t.due_at)
    return {
        "id": t.id,
        "user_id": t.user_id,
        "title": t.title,
        "description": t.description,
        "priority": t.priority,
        "tags": json.dumps(t.tags),
        "due_us": due_us,
        "due_sort_us": NO_DUE if due_us is None else due_us,
        "timezone": t.timezone,
        "status": t.status,
        "version": t.version,
        "created_us": to_micros(t.created_at),
        "updated_us": to_micros(t.updated_at),
        "completed_us": _us(t.completed_at),
        "due_local": _wall_text(t.due_local),
        "series_id": t.series_id,
        "occurrence": t.occurrence,
        "occurrence_local": _wall_text(t.occurrence_local),
    }


def reminder_values(t: Task) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "task_id": t.id,
            "position": i,
            "before": r.before,
            "offset_us": None if r.offset is None else r.offset // timedelta(microseconds=1),
            "at_us": _us(r.at),
            "fire_us": to_micros(r.fire_at),
            "state": r.state,
            "delivered_us": _us(r.delivered_at),
            "lateness_ms": r.lateness_ms,
            "urgent": r.urgent,
            "snooze": r.snooze,
            "held_us": _us(r.held_until),
        }
        for i, r in enumerate(t.reminders)
    ]


def task(r: Row[Any]) -> Task:
    return Task(
        id=r.id,
        user_id=r.user_id,
        title=r.title,
        description=r.description,
        priority=r.priority,
        tags=json.loads(r.tags),
        due_at=_dt(r.due_us),
        timezone=r.timezone,
        status=r.status,
        version=r.version,
        created_at=from_micros(r.created_us),
        updated_at=from_micros(r.updated_us),
        completed_at=_dt(r.completed_us),
        due_local=_wall(r.due_local),
        series_id=r.series_id,
        occurrence=r.occurrence,
        occurrence_local=_wall(r.occurrence_local),
    )


def reminder(r: Row[Any]) -> Reminder:
    return Reminder(
        id=r.id,
        fire_at=from_micros(r.fire_us),
        state=r.state,
        before=r.before,
        offset=None if r.offset_us is None else timedelta(microseconds=r.offset_us),
        at=_dt(r.at_us),
        delivered_at=_dt(r.delivered_us),
        lateness_ms=r.lateness_ms,
        urgent=r.urgent,
        snooze=r.snooze,
        held_until=_dt(r.held_us),
    )


def notification(r: Row[Any]) -> Notification:
    return Notification(
        id=r.id,
        user_id=r.user_id,
        task_id=r.task_id,
        reminder_id=r.reminder_id,
        title=r.title,
        message=r.message,
        scheduled_for_us=r.scheduled_us,
        fired_us=r.fired_us,
        lateness_ms=r.lateness_ms,
        read=r.read,
        late=r.late,
    )


def series_values(s: Series) -> dict[str, Any]:
    return {
        "id": s.id,
        "user_id": s.user_id,
        "rule": s.rule,
        "repeat_after": s.repeat_after,
        "timezone": s.timezone,
        "start_local": _wall_text(s.start_local),
        "title": s.title,
        "description": s.description,
        "priority": s.priority,
        "tags": json.dumps(s.tags),
        "reminders": None if s.reminders is None else json.dumps(_specs_json(s.reminders)),
        "active": s.active,
        "created_us": to_micros(s.created_at),
        "updated_us": to_micros(s.updated_at),
    }


def series(r: Row[Any]) -> Series:
    start = _wall(r.start_local)
    assert start is not None
    return Series(
        id=r.id,
        user_id=r.user_id,
        start_local=start,
        title=r.title,
        created_at=from_micros(r.created_us),
        updated_at=from_micros(r.updated_us),
        rule=r.rule,
        repeat_after=r.repeat_after,
        timezone=r.timezone,
        description=r.description,
        priority=r.priority,
        tags=json.loads(r.tags),
        reminders=None if r.reminders is None else _specs(json.loads(r.reminders)),
        active=r.active,
    )


def profile(user_id: str, r: Row[Any] | None) -> Profile:
    if r is None:
        return Profile(user_id)
    quiet = None
    if r.quiet_start is not None and r.quiet_end is not None:
        quiet = QuietHours(time.fromisoformat(r.quiet_start), time.fromisoformat(r.quiet_end))
    return Profile(user_id, r.timezone, quiet)


def profile_values(p: Profile, updated_us: int) -> dict[str, Any]:
    q = p.quiet_hours
    return {
        "user_id": p.user_id,
        "timezone": p.timezone,
        "quiet_start": None if q is None else q.start.strftime("%H:%M"),
        "quiet_end": None if q is None else q.end.strftime("%H:%M"),
        "updated_us": updated_us,
    }


def _specs_json(specs: list[ReminderSpec]) -> list[dict[str, Any]]:
    return [
        {
            "before": s.before,
            "offset_us": None if s.offset is None else s.offset // timedelta(microseconds=1),
            "at_us": _us(s.at),
            "urgent": s.urgent,
        }
        for s in specs
    ]


def _specs(items: list[dict[str, Any]]) -> list[ReminderSpec]:
    return [
        ReminderSpec(
            before=i["before"],
            offset=None if i["offset_us"] is None else timedelta(microseconds=i["offset_us"]),
            at=_dt(i["at_us"]),
            urgent=i["urgent"],
        )
        for i in items
    ]


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def _dt(us: int | None) -> datetime | None:
    return None if us is None else from_micros(us)


def _wall_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _wall(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
