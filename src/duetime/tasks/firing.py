"""Firing a reminder: deciding what a trigger means for its reminder (deliver, hold for quiet
hours, mark missed, ignore as a duplicate, stale or early), and the statements that record
it. Used by `SqlTaskStore`'s group-committed fire batch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from duetime.db.helpers import chunks, upsert_insert
from duetime.db.tables import notifications as n_table
from duetime.db.tables import reminders as r_table
from duetime.db.tables import tasks as t_table
from duetime.db.tables import user_profiles as p_table
from duetime.tasks import rows
from duetime.timefmt import from_micros, to_micros

FireResult = Literal[
    "delivered", "late", "duplicate", "skipped", "stale", "gone", "early", "held", "missed"
]


FireHook = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[None]]
"""Runs in the transaction that put notifications (their row values) into the inbox; each
notification is passed once, however often its reminder fired. A note whose fire was traced
also has `trace_context` (not a column): the fire span's context (`duetime.tracing`)."""


async def no_hook(conn: AsyncConnection, notes: list[dict[str, Any]]) -> None:
    return None


@dataclass(frozen=True)
class Fire:
    reminder_id: str
    fire_us: int
    fired_us: int
    notification_id: str
    release_us: int | None
    trace_context: str | None = None


def judge(
    fire: Fire, row: Row[Any] | None, seen: set[tuple[str, int]], grace_us: int, skip_missed: bool
) -> FireResult:
    """What to do with a trigger, given its reminder's row (None: gone) and the occurrences
    already in the inbox."""
    if row is None:
        return "gone"
    if row.fire_us != fire.fire_us:
        return "stale"  # moved since this trigger was scheduled
    if (fire.reminder_id, fire.fire_us) in seen or row.state == "delivered":
        return "duplicate"
    if row.state == "missed":
        return "duplicate"
    due_us = fire.release_us or fire.fire_us
    if fire.fired_us < due_us:
        return "early"  # a clock ahead, or a forged trigger: not yet
    if row.status != "open":
        return "skipped"
    release = release_of(row, due_us)
    if release is not None and to_micros(release) > fire.fired_us:
        return "held"
    if fire.fired_us - due_us > grace_us:
        return "missed" if skip_missed else "late"
    return "delivered"


def release_of(row: Row[Any], due_us: int) -> datetime | None:
    """When quiet hours let a reminder due at `due_us` through; None: not held."""
    if row.urgent or row.quiet_start is None:
        return None
    profile = rows.profile(row.user_id, row)
    assert profile.quiet_hours is not None
    zone = profile.zone(row.task_timezone)
    return profile.quiet_hours.release(from_micros(due_us).astimezone(UTC), zone)


def fire_query(ids: list[str]) -> Any:
    return (
        select(
            r_table,
            t_table.c.user_id,
            t_table.c.title,
            t_table.c.status,
            t_table.c.due_us,
            t_table.c.timezone.label("task_timezone"),
            p_table.c.timezone,
            p_table.c.quiet_start,
            p_table.c.quiet_end,
        )
        .join(t_table, t_table.c.id == r_table.c.task_id)
        .outerjoin(p_table, p_table.c.user_id == t_table.c.user_id)
        .where(r_table.c.id.in_(ids))
    )


HELD = update(r_table).where(r_table.c.id == bindparam("b_id")).values(held_us=bindparam("b_held"))

DELIVERED = (
    update(r_table)
    .where(r_table.c.id == bindparam("b_id"))
    .values(state="delivered", delivered_us=bindparam("b_at"), lateness_ms=bindparam("b_ms"))
)


def insert_ignoring_duplicates(conn: AsyncConnection) -> Any:
    """Another replica may have delivered the same occurrence a moment ago."""
    return upsert_insert(conn, n_table).on_conflict_do_nothing(
        index_elements=["reminder_id", "scheduled_us"]
    )


def note_values(fire: Fire, row: Row[Any], lateness_ms: float, late: bool) -> dict[str, Any]:
    return {
        "id": fire.notification_id,
        "user_id": row.user_id,
        "task_id": row.task_id,
        "reminder_id": fire.reminder_id,
        "title": row.title,
        "message": message(row.title, row.due_us, fire.fire_us),
        "scheduled_us": fire.fire_us,
        "fired_us": fire.fired_us,
        "lateness_ms": lateness_ms,
        "read": False,
        "late": late,
    }


async def inserted(conn: AsyncConnection, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notes this transaction inserted (not those another replica inserted first)."""
    ids: set[str] = set()
    for chunk in chunks([n["id"] for n in notes]):
        ids.update(await conn.scalars(select(n_table.c.id).where(n_table.c.id.in_(chunk))))
    return [n for n in notes if n["id"] in ids]


def message(title: str, due_us: int | None, fire_us: int) -> str:
    if due_us is None:
        return f"Reminder: {title}"
    if due_us == fire_us:
        return f"{title} is due now"
    return f"{title} is due at {from_micros(due_us).isoformat().replace('+00:00', 'Z')}"
