"""Tasks, reminders and notifications in the app's SQL database.

Every method is one transaction. A task change, the scheduling intents it causes (written
through `Scheduling`) and its events commit together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from duetime.db.batch import Batcher
from duetime.db.helpers import chunks, transaction, upsert_insert
from duetime.db.tables import notifications as n_table
from duetime.db.tables import reminders as r_table
from duetime.db.tables import series as s_table
from duetime.db.tables import tasks as t_table
from duetime.db.tables import user_profiles as p_table
from duetime.events.model import OutgoingEvent
from duetime.events.store import write_events
from duetime.tasks import rows
from duetime.tasks.firing import (
    DELIVERED,
    HELD,
    Fire,
    FireHook,
    FireResult,
    fire_query,
    insert_ignoring_duplicates,
    inserted,
    judge,
    no_hook,
    note_values,
    release_of,
)
from duetime.tasks.model import REMINDER_JOB_PREFIX, Notification, Series, Task, reminder_job
from duetime.tasks.profile import Profile
from duetime.tasks.scheduling import Intent, Scheduling
from duetime.timefmt import from_micros, to_micros


@dataclass(frozen=True)
class TaskQuery:
    status: Literal["open", "done", "skipped"] | None = None
    series_id: str | None = None
    due_before: int | None = None
    due_after: int | None = None
    tag: str | None = None
    text: str | None = None
    sort: Literal["due_at", "-due_at", "created_at", "-created_at"] = "created_at"
    after: tuple[int, str] | None = None  # cursor: (sort value, id)
    limit: int = 50


_Add = tuple[Sequence[Task], Sequence[Intent], Sequence[OutgoingEvent], Sequence[Series]]


class SqlTaskStore:
    """`scheduling` takes the reminder jobs' intents into each transaction.
    `misfire_grace_us`: a reminder firing later than this past its time is delivered
    marked late, or recorded as `missed` when `skip_missed`. `on_fire` runs in the
    transaction that puts notifications into the inbox."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        scheduling: Scheduling,
        on_fire: FireHook = no_hook,
        misfire_grace_us: int = 3_600_000_000,
        skip_missed: bool = False,
    ) -> None:
        self._engine = engine
        self._scheduling = scheduling
        self._on_fire = on_fire
        self._grace_us = misfire_grace_us
        self._skip_missed = skip_missed
        self._adds: Batcher[_Add, None] = Batcher(self._add_batch)
        self._fires: Batcher[Fire, FireResult] = Batcher(self._fire_batch)

    async def close(self) -> None:
        await self._adds.close()
        await self._fires.close()

    # -- tasks -----------------------------------------------------------------------------
    async def add(
        self,
        tasks: Sequence[Task],
        intents: Sequence[Intent],
        events: Sequence[OutgoingEvent] = (),
        series: Sequence[Series] = (),
    ) -> None:
        """Insert tasks with their reminders, intents, events and new series. Concurrent
        calls share one transaction (group commit)."""
        await self._adds.submit((tasks, intents, events, series))

    async def _add_batch(self, items: list[_Add]) -> list[None]:
        tasks = [t for batch, _, _, _ in items for t in batch]
        intents = [i for _, batch, _, _ in items for i in batch]
        events = [e for _, _, batch, _ in items for e in batch]
        new_series = [s for _, _, _, batch in items for s in batch]
        async with transaction(self._engine) as tx:
            conn = tx.conn
            await _insert_tasks(conn, tasks)
            for chunk in chunks([rows.series_values(s) for s in new_series]):
                await conn.execute(insert(s_table), chunk)
            await self._scheduling.write(tx, intents)
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
        *,
        new_tasks: Sequence[Task] = (),
        series: Series | None = None,
    ) -> bool:
        """Write `task` (its version already bumped) if the stored one still has
        `expected_version`, with `new_tasks` (a series' next occurrence) and `series` (new or
        changed); False if the task changed or vanished meanwhile."""
        values = rows.task_values(task)
        async with transaction(self._engine) as tx:
            conn = tx.conn
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
            reminder_rows = rows.reminder_values(task)
            if reminder_rows:
                await conn.execute(insert(r_table), reminder_rows)
            await _insert_tasks(conn, new_tasks)
            if series is not None:
                values = rows.series_values(series)
                upsert = upsert_insert(conn, s_table).values(values)
                await conn.execute(upsert.on_conflict_do_update(index_elements=["id"], set_=values))
            await self._scheduling.write(tx, intents)
            await write_events(conn, events, to_micros(task.updated_at))
        return True

    # -- series and profiles ---------------------------------------------------------------
    async def get_series(self, user_id: str, series_id: str) -> Series | None:
        c = s_table.c
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(s_table).where(c.id == series_id, c.user_id == user_id))
            ).first()
        return None if row is None else rows.series(row)

    async def put_series(self, series: Series) -> None:
        values = rows.series_values(series)
        async with self._engine.begin() as conn:
            await conn.execute(update(s_table).where(s_table.c.id == series.id).values(values))

    async def series_tasks(self, user_id: str, series_id: str) -> list[Task]:
        c = t_table.c
        stmt = (
            select(t_table)
            .where(c.user_id == user_id, c.series_id == series_id)
            .order_by(c.occurrence, c.id)
        )
        async with self._engine.connect() as conn:
            return await _with_reminders(conn, list(await conn.execute(stmt)))

    async def profile(self, user_id: str) -> Profile:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(p_table).where(p_table.c.user_id == user_id))).first()
        return rows.profile(user_id, row)

    async def put_profile(self, profile: Profile, updated_us: int) -> None:
        values = rows.profile_values(profile, updated_us)
        async with self._engine.begin() as conn:
            stmt = upsert_insert(conn, p_table).values(values)
            await conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=values))

    async def following_tasks(self, user_id: str, after_id: str, limit: int) -> list[Task]:
        """Open tasks stated in the user's local time (they follow the user's zone), by id."""
        c = t_table.c
        stmt = (
            select(t_table)
            .where(
                c.user_id == user_id,
                c.status == "open",
                c.timezone.is_(None),
                c.due_local.is_not(None),
                c.id > after_id,
            )
            .order_by(c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return await _with_reminders(conn, list(await conn.execute(stmt)))

    async def notification(self, user_id: str, notification_id: str) -> Notification | None:
        c = n_table.c
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(n_table).where(c.id == notification_id, c.user_id == user_id)
                )
            ).first()
        return None if row is None else rows.notification(row)

    async def remove(
        self,
        user_id: str,
        task_id: str,
        intents: Sequence[Intent],
        events: Sequence[OutgoingEvent] = (),
        now_us: int = 0,
    ) -> bool:
        async with transaction(self._engine) as tx:
            conn = tx.conn
            result = await conn.execute(
                delete(t_table).where(t_table.c.id == task_id, t_table.c.user_id == user_id)
            )
            if not result.rowcount:
                return False
            await conn.execute(delete(r_table).where(r_table.c.task_id == task_id))
            await self._scheduling.write(tx, intents)
            await write_events(conn, events, now_us)
        return True

    async def query(self, user_id: str, q: TaskQuery) -> list[Task]:
        c = t_table.c
        column = c.due_sort_us if q.sort.endswith("due_at") else c.created_us
        descending = q.sort.startswith("-")
        stmt = select(t_table).where(c.user_id == user_id)
        if q.status:
            stmt = stmt.where(c.status == q.status)
        if q.series_id:
            stmt = stmt.where(c.series_id == q.series_id)
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
        """Delete tasks completed (or skipped) before `before_us`; returns how many."""
        async with self._engine.begin() as conn:
            ids = list(
                await conn.scalars(
                    select(t_table.c.id).where(
                        t_table.c.status.in_(("done", "skipped")),
                        t_table.c.completed_us < before_us,
                    )
                )
            )
            for chunk in chunks(ids):
                await conn.execute(delete(r_table).where(r_table.c.task_id.in_(chunk)))
                await conn.execute(delete(t_table).where(t_table.c.id.in_(chunk)))
        return len(ids)

    # -- firing ----------------------------------------------------------------------------
    async def record_fire(
        self,
        reminder_id: str,
        fire_us: int,
        fired_us: int,
        notification_id: str,
        release_us: int | None = None,
        trace_context: str | None = None,
    ) -> FireResult:
        """Deliver the reminder occurrence due at `fire_us` (held by quiet hours until
        `release_us`) into its user's inbox, once. A reminder that falls in its user's quiet
        hours and is not urgent is `held`: rescheduled for when they end. Concurrent calls
        share one transaction. `trace_context` (the fire's span) goes with the deliveries
        and with a held reminder's job."""
        fire = Fire(reminder_id, fire_us, fired_us, notification_id, release_us, trace_context)
        return await self._fires.submit(fire)

    async def _fire_batch(self, fires: list[Fire]) -> list[FireResult]:
        ids = list({f.reminder_id for f in fires})
        results: list[FireResult] = []
        notes: list[dict[str, Any]] = []
        delivered: list[dict[str, Any]] = []
        states: dict[str, str] = {}
        held: list[dict[str, Any]] = []
        intents: list[Intent] = []
        touched: set[str] = set()
        traces: dict[str, str] = {}  # notification id → its fire's trace context
        async with transaction(self._engine) as tx:
            conn = tx.conn
            found: dict[str, Row[Any]] = {}
            seen: set[tuple[str, int]] = set()
            for chunk in chunks(ids):
                found.update({r.id: r for r in await conn.execute(fire_query(chunk))})
                known = select(n_table.c.reminder_id, n_table.c.scheduled_us).where(
                    n_table.c.reminder_id.in_(chunk)
                )
                seen.update((r.reminder_id, r.scheduled_us) for r in await conn.execute(known))
            for fire in fires:
                row = found.get(fire.reminder_id)
                result = judge(fire, row, seen, self._grace_us, self._skip_missed)
                results.append(result)
                if row is None or result in ("stale", "duplicate", "early"):
                    continue
                touched.add(row.task_id)
                if result == "skipped" and row.state == "scheduled":
                    states[fire.reminder_id] = "skipped"
                elif result == "missed":
                    states[fire.reminder_id] = "missed"
                elif result == "held":
                    release = release_of(row, fire.fire_us)
                    assert release is not None
                    held.append({"b_id": fire.reminder_id, "b_held": to_micros(release)})
                    job = reminder_job(
                        row.task_id, fire.reminder_id, from_micros(fire.fire_us), release
                    )
                    intents.append(
                        Intent(f"{REMINDER_JOB_PREFIX}{fire.reminder_id}", job, fire.trace_context)
                    )
                elif result in ("delivered", "late"):
                    seen.add((fire.reminder_id, fire.fire_us))
                    due_us = fire.release_us or fire.fire_us
                    lateness_ms = (fire.fired_us - due_us) / 1000
                    notes.append(note_values(fire, row, lateness_ms, result == "late"))
                    if fire.trace_context is not None:
                        traces[fire.notification_id] = fire.trace_context
                    delivered.append(
                        {"b_id": fire.reminder_id, "b_at": fire.fired_us, "b_ms": lateness_ms}
                    )
            if notes:
                await conn.execute(insert_ignoring_duplicates(conn), notes)
                await conn.execute(DELIVERED, delivered)
                fresh = await inserted(conn, notes)
                if traces:  # after the insert: not a column
                    for note in fresh:
                        note["trace_context"] = traces.get(note["id"])
                await self._on_fire(conn, fresh)
            if held:
                await conn.execute(HELD, held)
            for state in ("skipped", "missed"):
                chosen = [rid for rid, s in states.items() if s == state]
                for chunk in chunks(chosen):
                    await conn.execute(
                        update(r_table).where(r_table.c.id.in_(chunk)).values(state=state)
                    )
            # Delivery changes what the task shows: a concurrent edit that read the task
            # before must not write its old reminder states back (its save will retry).
            for chunk in chunks(sorted(touched)):
                await conn.execute(
                    update(t_table)
                    .where(t_table.c.id.in_(chunk))
                    .values(version=t_table.c.version + 1)
                )
            await self._scheduling.write(tx, intents)
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
            return [rows.notification(r) for r in await conn.execute(stmt)]

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
        return None if row is None else rows.notification(row)


def _now_us(tasks: Sequence[Task]) -> int:
    return max((to_micros(t.updated_at) for t in tasks), default=0)


async def _insert_tasks(conn: AsyncConnection, tasks: Sequence[Task]) -> None:
    for chunk in chunks([rows.task_values(t) for t in tasks]):
        await conn.execute(insert(t_table), chunk)
    for chunk in chunks([v for t in tasks for v in rows.reminder_values(t)]):
        await conn.execute(insert(r_table), chunk)


async def _with_reminders(conn: AsyncConnection, found: list[Row[Any]]) -> list[Task]:
    tasks = [rows.task(r) for r in found]
    by_id = {t.id: t for t in tasks}
    for chunk in chunks(list(by_id)):
        stmt = (
            select(r_table)
            .where(r_table.c.task_id.in_(chunk))
            .order_by(r_table.c.task_id, r_table.c.position)
        )
        for r in await conn.execute(stmt):
            by_id[r.task_id].reminders.append(rows.reminder(r))
    return tasks


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
