"""Tasks, reminders, notifications and the scheduling outbox in the app's SQL database.

Every method is one transaction. A task change and the scheduling intents it causes commit
together (the transactional outbox); `SchedulingRelay` carries the intents to the scheduler.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from duetime.db.batch import Batcher
from duetime.db.helpers import chunks, upsert_insert
from duetime.db.tables import notifications as n_table
from duetime.db.tables import reminders as r_table
from duetime.db.tables import schedule_outbox as o_table
from duetime.db.tables import tasks as t_table
from duetime.events.model import OutgoingEvent
from duetime.events.store import write_events
from duetime.tasks.model import Reminder, Task
from duetime.timefmt import from_micros, to_micros

_NO_DUE = 2**62  # sorts tasks without a due time last


@dataclass(frozen=True)
class Intent:
    """Schedule `job` (a JSON-ready dict for `duetime.jobs.Job`, with overwrite) or, when
    `job` is None, delete the job `job_name`."""

    job_name: str
    job: dict[str, Any] | None


@dataclass(frozen=True)
class TaskQuery:
    status: Literal["open", "done"] | None = None
    due_before: int | None = None
    due_after: int | None = None
    tag: str | None = None
    text: str | None = None
    sort: Literal["due_at", "-due_at", "created_at", "-created_at"] = "created_at"
    after: tuple[int, str] | None = None  # cursor: (sort value, id)
    limit: int = 50


@dataclass(frozen=True)
class Notification:
    id: str
    user_id: str
    task_id: str
    reminder_id: str
    title: str
    message: str
    scheduled_for_us: int
    fired_us: int
    lateness_ms: float
    read: bool


FireResult = Literal["delivered", "duplicate", "skipped", "stale", "gone", "early"]


_Add = tuple[Sequence[Task], Sequence[Intent], Sequence[OutgoingEvent]]

FireHook = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[None]]
"""Runs in the transaction that put notifications (their row values) into the inbox; each
notification is passed once, however often its reminder fired."""


async def _no_hook(conn: AsyncConnection, notes: list[dict[str, Any]]) -> None:
    return None


@dataclass(frozen=True)
class _Fire:
    reminder_id: str
    fire_us: int
    fired_us: int
    notification_id: str


class SqlTaskStore:
    def __init__(self, engine: AsyncEngine, *, on_fire: FireHook = _no_hook) -> None:
        self._engine = engine
        self._on_fire = on_fire
        self._adds: Batcher[_Add, None] = Batcher(self._add_batch)
        self._fires: Batcher[_Fire, FireResult] = Batcher(self._fire_batch)

    async def close(self) -> None:
        await self._adds.close()
        await self._fires.close()

    # -- tasks -----------------------------------------------------------------------------
    async def add(
        self,
        tasks: Sequence[Task],
        intents: Sequence[Intent],
        events: Sequence[OutgoingEvent] = (),
    ) -> None:
        """Insert tasks with their reminders, intents and events. Concurrent calls share one
        transaction (group commit)."""
        await self._adds.submit((tasks, intents, events))

    async def _add_batch(self, items: list[_Add]) -> list[None]:
        tasks = [t for batch, _, _ in items for t in batch]
        intents = [i for _, batch, _ in items for i in batch]
        events = [e for _, _, batch in items for e in batch]
        async with self._engine.begin() as conn:
            for chunk in chunks([_task_values(t) for t in tasks]):
                await conn.execute(insert(t_table), chunk)
            for chunk in chunks([v for t in tasks for v in _reminder_values(t)]):
                await conn.execute(insert(r_table), chunk)
            await _enqueue(conn, intents)
            await write_events(conn, events, _now_us(tasks))
        return [None] * len(items)

    async def get(self, user_id: str, task_id: str) -> Task | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t_table).where(t_table.c.id == task_id, t_table.c.user_id == user_id)
                )
            ).first()
            if row is None:
                return None
            return (await _with_reminders(conn, [row]))[0]

    async def save(
        self,
        task: Task,
        expected_version: int,
        intents: Sequence[Intent],
        events: Sequence[OutgoingEvent] = (),
    ) -> bool:
        """Write `task` (its version already bumped) if the stored one still has
        `expected_version`; False if it changed or vanished meanwhile."""
        values = _task_values(task)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(t_table)
                .where(
                    t_table.c.id == task.id,
                    t_table.c.user_id == task.user_id,
                    t_table.c.version == expected_version,
                )
                .values({k: v for k, v in values.items() if k != "id"})
            )
            if not result.rowcount:
                return False
            await conn.execute(delete(r_table).where(r_table.c.task_id == task.id))
            reminder_rows = _reminder_values(task)
            if reminder_rows:
                await conn.execute(insert(r_table), reminder_rows)
            await _enqueue(conn, intents)
            await write_events(conn, events, to_micros(task.updated_at))
        return True

    async def remove(
        self,
        user_id: str,
        task_id: str,
        intents: Sequence[Intent],
        events: Sequence[OutgoingEvent] = (),
        now_us: int = 0,
    ) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(t_table).where(t_table.c.id == task_id, t_table.c.user_id == user_id)
            )
            if not result.rowcount:
                return False
            await conn.execute(delete(r_table).where(r_table.c.task_id == task_id))
            await _enqueue(conn, intents)
            await write_events(conn, events, now_us)
        return True

    async def query(self, user_id: str, q: TaskQuery) -> list[Task]:
        c = t_table.c
        column = c.due_sort_us if q.sort.endswith("due_at") else c.created_us
        descending = q.sort.startswith("-")
        stmt = select(t_table).where(c.user_id == user_id)
        if q.status:
            stmt = stmt.where(c.status == q.status)
        if q.due_before is not None:
            stmt = stmt.where(c.due_us < q.due_before)
        if q.due_after is not None:
            stmt = stmt.where(c.due_us > q.due_after)
        if q.tag:
            stmt = stmt.where(c.tags.contains(json.dumps(q.tag), autoescape=True))
        if q.text:
            like = f"%{_escape_like(q.text.lower())}%"
            stmt = stmt.where(
                or_(
                    func.lower(c.title).like(like, escape="\\"),
                    func.lower(c.description).like(like, escape="\\"),
                )
            )
        if q.after is not None:
            value, last_id = q.after
            if descending:
                stmt = stmt.where(or_(column < value, and_(column == value, c.id < last_id)))
            else:
                stmt = stmt.where(or_(column > value, and_(column == value, c.id > last_id)))
        order = (column.desc(), c.id.desc()) if descending else (column, c.id)
        stmt = stmt.order_by(*order).limit(q.limit)
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(stmt))
            return await _with_reminders(conn, rows)

    async def purge_done(self, before_us: int) -> int:
        """Delete tasks completed before `before_us`; returns how many."""
        async with self._engine.begin() as conn:
            ids = list(
                await conn.scalars(
                    select(t_table.c.id).where(
                        t_table.c.status == "done", t_table.c.completed_us < before_us
                    )
                )
            )
            for chunk in chunks(ids):
                await conn.execute(delete(r_table).where(r_table.c.task_id.in_(chunk)))
                await conn.execute(delete(t_table).where(t_table.c.id.in_(chunk)))
        return len(ids)

    # -- firing ----------------------------------------------------------------------------
    async def record_fire(
        self, reminder_id: str, fire_us: int, fired_us: int, notification_id: str
    ) -> FireResult:
        """Deliver the reminder occurrence due at `fire_us` into its user's inbox, once.
        Concurrent calls share one transaction."""
        return await self._fires.submit(_Fire(reminder_id, fire_us, fired_us, notification_id))

    async def _fire_batch(self, fires: list[_Fire]) -> list[FireResult]:
        ids = list({f.reminder_id for f in fires})
        results: list[FireResult] = []
        notes: list[dict[str, Any]] = []
        delivered: list[dict[str, Any]] = []
        skipped: list[str] = []
        touched: set[str] = set()
        async with self._engine.begin() as conn:
            found: dict[str, Row[Any]] = {}
            seen: set[tuple[str, int]] = set()
            for chunk in chunks(ids):
                query = (
                    select(
                        r_table,
                        t_table.c.user_id,
                        t_table.c.title,
                        t_table.c.status,
                        t_table.c.due_us,
                    )
                    .join(t_table, t_table.c.id == r_table.c.task_id)
                    .where(r_table.c.id.in_(chunk))
                )
                found.update({r.id: r for r in await conn.execute(query)})
                known = select(n_table.c.reminder_id, n_table.c.scheduled_us).where(
                    n_table.c.reminder_id.in_(chunk)
                )
                seen.update((r.reminder_id, r.scheduled_us) for r in await conn.execute(known))
            for fire in fires:
                row = found.get(fire.reminder_id)
                if row is None:
                    results.append("gone")
                elif row.fire_us != fire.fire_us:
                    results.append("stale")  # moved since this trigger was scheduled
                elif (fire.reminder_id, fire.fire_us) in seen or row.state == "delivered":
                    results.append("duplicate")
                elif fire.fired_us < fire.fire_us:
                    results.append("early")  # a clock ahead, or a forged trigger: not yet
                elif row.status == "done":
                    if row.state == "scheduled":
                        skipped.append(fire.reminder_id)
                        touched.add(row.task_id)
                    results.append("skipped")
                else:
                    touched.add(row.task_id)
                    seen.add((fire.reminder_id, fire.fire_us))
                    lateness_ms = (fire.fired_us - fire.fire_us) / 1000
                    notes.append(_note_values(fire, row, lateness_ms))
                    delivered.append(
                        {"b_id": fire.reminder_id, "b_at": fire.fired_us, "b_ms": lateness_ms}
                    )
                    results.append("delivered")
            if notes:
                await conn.execute(_insert_ignoring_duplicates(conn), notes)
                await conn.execute(_DELIVERED, delivered)
                await self._on_fire(conn, await _inserted(conn, notes))
            # Delivery changes what the task shows: a concurrent edit that read the task
            # before must not write its old reminder states back (its save will retry).
            for chunk in chunks(sorted(touched)):
                await conn.execute(
                    update(t_table)
                    .where(t_table.c.id.in_(chunk))
                    .values(version=t_table.c.version + 1)
                )
            for chunk in chunks(skipped):
                await conn.execute(
                    update(r_table).where(r_table.c.id.in_(chunk)).values(state="skipped")
                )
        return results

    # -- notifications ---------------------------------------------------------------------
    async def notifications(
        self, user_id: str, *, unread: bool, after: tuple[int, str] | None, limit: int
    ) -> list[Notification]:
        c = n_table.c
        stmt = select(n_table).where(c.user_id == user_id)
        if unread:
            stmt = stmt.where(c.read.is_(False))
        if after is not None:
            fired_us, last_id = after
            stmt = stmt.where(
                or_(c.fired_us < fired_us, and_(c.fired_us == fired_us, c.id < last_id))
            )
        stmt = stmt.order_by(c.fired_us.desc(), c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [_notification(r) for r in await conn.execute(stmt)]

    async def mark_read(self, user_id: str, notification_id: str) -> Notification | None:
        c = n_table.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(n_table)
                .where(c.id == notification_id, c.user_id == user_id)
                .values(read=True)
            )
            row = (
                await conn.execute(
                    select(n_table).where(c.id == notification_id, c.user_id == user_id)
                )
            ).first()
        return None if row is None else _notification(row)

    # -- outbox ----------------------------------------------------------------------------
    async def pending_intents(self, limit: int) -> list[tuple[int, Intent]]:
        stmt = select(o_table).order_by(o_table.c.id).limit(limit)
        async with self._engine.connect() as conn:
            return [
                (r.id, Intent(r.job_name, None if r.job is None else json.loads(r.job)))
                for r in await conn.execute(stmt)
            ]

    async def drop_intents(self, ids: Sequence[int]) -> None:
        async with self._engine.begin() as conn:
            for chunk in chunks(list(ids)):
                await conn.execute(delete(o_table).where(o_table.c.id.in_(chunk)))


_DELIVERED = (
    update(r_table)
    .where(r_table.c.id == bindparam("b_id"))
    .values(state="delivered", delivered_us=bindparam("b_at"), lateness_ms=bindparam("b_ms"))
)


def _insert_ignoring_duplicates(conn: AsyncConnection) -> Any:
    """Another replica may have delivered the same occurrence a moment ago."""
    return upsert_insert(conn, n_table).on_conflict_do_nothing(
        index_elements=["reminder_id", "scheduled_us"]
    )


def _note_values(fire: _Fire, row: Row[Any], lateness_ms: float) -> dict[str, Any]:
    return {
        "id": fire.notification_id,
        "user_id": row.user_id,
        "task_id": row.task_id,
        "reminder_id": fire.reminder_id,
        "title": row.title,
        "message": _message(row.title, row.due_us, fire.fire_us),
        "scheduled_us": fire.fire_us,
        "fired_us": fire.fired_us,
        "lateness_ms": lateness_ms,
        "read": False,
    }


async def _inserted(conn: AsyncConnection, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notes this transaction inserted (not those another replica inserted first)."""
    ids: set[str] = set()
    for chunk in chunks([n["id"] for n in notes]):
        ids.update(await conn.scalars(select(n_table.c.id).where(n_table.c.id.in_(chunk))))
    return [n for n in notes if n["id"] in ids]


def _now_us(tasks: Sequence[Task]) -> int:
    return max((to_micros(t.updated_at) for t in tasks), default=0)


async def _enqueue(conn: AsyncConnection, intents: Sequence[Intent]) -> None:
    rows = [
        {"job_name": i.job_name, "job": None if i.job is None else json.dumps(i.job)}
        for i in intents
    ]
    for chunk in chunks(rows):
        await conn.execute(insert(o_table), chunk)


async def _with_reminders(conn: AsyncConnection, rows: list[Row[Any]]) -> list[Task]:
    tasks = [_task(r) for r in rows]
    by_id = {t.id: t for t in tasks}
    for chunk in chunks(list(by_id)):
        stmt = (
            select(r_table)
            .where(r_table.c.task_id.in_(chunk))
            .order_by(r_table.c.task_id, r_table.c.position)
        )
        for r in await conn.execute(stmt):
            by_id[r.task_id].reminders.append(_reminder(r))
    return tasks


def _message(title: str, due_us: int | None, fire_us: int) -> str:
    if due_us is None:
        return f"Reminder: {title}"
    if due_us == fire_us:
        return f"{title} is due now"
    return f"{title} is due at {from_micros(due_us).isoformat().replace('+00:00', 'Z')}"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _us(value: Any) -> int | None:
    return None if value is None else to_micros(value)


def _task_values(t: Task) -> dict[str, Any]:
    due_us = _us(t.due_at)
    return {
        "id": t.id,
        "user_id": t.user_id,
        "title": t.title,
        "description": t.description,
        "priority": t.priority,
        "tags": json.dumps(t.tags),
        "due_us": due_us,
        "due_sort_us": _NO_DUE if due_us is None else due_us,
        "timezone": t.timezone,
        "status": t.status,
        "version": t.version,
        "created_us": to_micros(t.created_at),
        "updated_us": to_micros(t.updated_at),
        "completed_us": _us(t.completed_at),
    }


def _reminder_values(t: Task) -> list[dict[str, Any]]:
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
        }
        for i, r in enumerate(t.reminders)
    ]


def _dt(us: int | None) -> Any:
    return None if us is None else from_micros(us)


def _task(r: Row[Any]) -> Task:
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
    )


def _reminder(r: Row[Any]) -> Reminder:
    return Reminder(
        id=r.id,
        fire_at=from_micros(r.fire_us),
        state=r.state,
        before=r.before,
        offset=None if r.offset_us is None else timedelta(microseconds=r.offset_us),
        at=_dt(r.at_us),
        delivered_at=_dt(r.delivered_us),
        lateness_ms=r.lateness_ms,
    )


def _notification(r: Row[Any]) -> Notification:
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
    )
