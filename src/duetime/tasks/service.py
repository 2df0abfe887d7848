"""Task use cases: every change to a task and the scheduling it causes, and what happens when a
reminder fires. Ownership is checked here: a user sees only their own tasks; anyone else's
are "not found"."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from duetime.clock import Clock
from duetime.events.model import TaskEventKind, task_event
from duetime.jobs import Job, JobScheduler, Trigger
from duetime.tasks.model import (
    Priority,
    Reminder,
    ReminderSpec,
    Status,
    Task,
    TaskRuleError,
    build_reminders,
    new_id,
)
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.store import Intent, Notification, SqlTaskStore, TaskQuery
from duetime.timefmt import format_rfc3339, parse_rfc3339, to_micros

log = logging.getLogger(__name__)

MAINTENANCE_JOB = "duetime-maintenance-retention"


class TaskNotFound(LookupError):
    pass


class ReminderNotDue(Exception):
    """A trigger arrived before its reminder's time; failing it makes the engine retry."""


class TaskBusy(Exception):
    """A change lost the race to concurrent changes several times in a row."""


class VersionMismatch(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the task is at version {current}")
        self.current = current


@dataclass(frozen=True)
class TaskInput:
    """A validated task as the user states it; `reminders=None` means the default."""

    title: str
    description: str = ""
    priority: Priority = "medium"
    tags: list[str] = field(default_factory=list)
    due_at: datetime | None = None
    timezone: str | None = None
    reminders: list[ReminderSpec] | None = None
    status: Status = "open"


def reminder_intent(task: Task, reminder: Reminder) -> Intent:
    fire_at = format_rfc3339(reminder.fire_at)
    data = {"task_id": task.id, "reminder_id": reminder.id, "fire_at": fire_at}
    return Intent(reminder.job_name, {"dueTime": fire_at, "data": data})


def _cancel(reminder: Reminder) -> Intent:
    return Intent(reminder.job_name, None)


class TaskService:
    def __init__(
        self,
        store: SqlTaskStore,
        relay: SchedulingRelay,
        clock: Clock,
        *,
        on_events: Callable[[], None] = lambda: None,
        on_fire: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_events` is called after every commit that wrote events to the outbox (it
        wakes the event relay); `on_fire` after a reminder reached the inbox (it wakes the
        event relay and the delivery worker)."""
        self._store = store
        self._relay = relay
        self._clock = clock
        self._on_events = on_events
        self._on_fire = on_fire

    # -- commands --------------------------------------------------------------------------
    async def create(
        self, user_id: str, inputs: list[TaskInput], *, batch: bool = False
    ) -> tuple[list[Task], int]:
        """Create tasks (all or none) and schedule their reminders; returns the tasks and how
        many reminders were scheduled. In a `batch`, a rule error names the task's index."""
        now = self._clock.now()
        tasks = []
        for index, inp in enumerate(inputs):
            try:
                tasks.append(self._new_task(user_id, inp, now))
            except TaskRuleError as exc:
                raise TaskRuleError(f"tasks[{index}]: {exc}" if batch else str(exc)) from None
        intents = [
            reminder_intent(t, r) for t in tasks for r in t.reminders if r.state == "scheduled"
        ]
        await self._store.add(tasks, intents, [task_event("created", t, now) for t in tasks])
        self._relay.kick()
        self._on_events()
        return tasks, len(intents)

    def _new_task(self, user_id: str, inp: TaskInput, now: datetime) -> Task:
        task = Task(
            id=new_id(),
            user_id=user_id,
            title=inp.title,
            description=inp.description,
            priority=inp.priority,
            tags=list(inp.tags),
            due_at=inp.due_at,
            timezone=inp.timezone,
            status=inp.status,
            created_at=now,
            updated_at=now,
            completed_at=now if inp.status == "done" else None,
        )
        task.reminders = build_reminders(inp.reminders, inp.due_at, now)
        if task.status == "done":
            for r in task.reminders:
                r.state = "skipped"
        return task

    async def get(self, user_id: str, task_id: str) -> Task:
        task = await self._store.get(user_id, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def find(self, user_id: str, query: TaskQuery) -> list[Task]:
        return await self._store.query(user_id, query)

    async def update(
        self,
        user_id: str,
        task_id: str,
        changes: dict[str, Any],
        *,
        if_version: int | None = None,
    ) -> Task:
        """Apply `changes` (TaskInput field names → new values). Reminders are rescheduled
        only when the due time or the reminders change; status changes complete or reopen."""
        for _ in range(5):  # optimistic concurrency: retry on a concurrent change
            old = await self.get(user_id, task_id)
            if if_version is not None and old.version != if_version:
                raise VersionMismatch(old.version)
            now = self._clock.now()
            task, intents = self._apply(old, changes, now)
            kind: TaskEventKind = (
                "completed" if task.status == "done" and old.status != "done" else "updated"
            )
            if await self._store.save(task, old.version, intents, [task_event(kind, task, now)]):
                if intents:
                    self._relay.kick()
                self._on_events()
                return task
            if if_version is not None:
                raise VersionMismatch((await self.get(user_id, task_id)).version)
        raise TaskBusy(f"task {task_id} kept changing while this change was applied; retry")

    def _apply(
        self, old: Task, changes: dict[str, Any], now: datetime
    ) -> tuple[Task, list[Intent]]:
        plain = {k: v for k, v in changes.items() if k not in ("reminders", "status")}
        task = replace(old, **plain, version=old.version + 1, updated_at=now)
        task.reminders = list(old.reminders)
        intents: list[Intent] = []
        if "reminders" in changes or task.due_at != old.due_at:
            specs = changes["reminders"] if "reminders" in changes else KEEP
            task.reminders, intents = _reschedule(old, task, specs, now)
        status = changes.get("status", old.status)
        if status != old.status:
            intents = self._set_status(task, status, now, intents)
        return task, intents

    def _set_status(
        self, task: Task, status: Status, now: datetime, intents: list[Intent]
    ) -> list[Intent]:
        task.status = status
        by_name = {i.job_name: i for i in intents}
        if status == "done":
            task.completed_at = now
            for r in task.reminders:
                if r.state == "scheduled":
                    r.state = "skipped"
                    by_name[r.job_name] = _cancel(r)
        else:
            task.completed_at = None
            for r in task.reminders:
                if r.state in ("scheduled", "skipped") and r.fire_at > now:
                    r.state = "scheduled"
                    by_name[r.job_name] = reminder_intent(task, r)
        return list(by_name.values())

    async def complete(self, user_id: str, task_id: str) -> Task:
        return await self.update(user_id, task_id, {"status": "done"})

    async def reopen(self, user_id: str, task_id: str) -> Task:
        return await self.update(user_id, task_id, {"status": "open"})

    async def delete(self, user_id: str, task_id: str) -> None:
        task = await self.get(user_id, task_id)
        intents = [_cancel(r) for r in task.reminders if r.state == "scheduled"]
        now = self._clock.now()
        events = [task_event("deleted", task, now)]
        if not await self._store.remove(user_id, task_id, intents, events, to_micros(now)):
            raise TaskNotFound(task_id)
        if intents:
            self._relay.kick()
        self._on_events()

    # -- notifications ---------------------------------------------------------------------
    async def notifications(
        self, user_id: str, *, unread: bool, after: tuple[int, str] | None, limit: int
    ) -> list[Notification]:
        return await self._store.notifications(user_id, unread=unread, after=after, limit=limit)

    async def mark_read(self, user_id: str, notification_id: str) -> Notification:
        found = await self._store.mark_read(user_id, notification_id)
        if found is None:
            raise TaskNotFound(notification_id)
        return found

    # -- triggers --------------------------------------------------------------------------
    async def on_reminder(self, trigger: Trigger) -> None:
        """A reminder's job fired: deliver it to the inbox once, however often it fires."""
        data = trigger.data
        if not isinstance(data, dict) or "reminder_id" not in data or "fire_at" not in data:
            log.error("reminder trigger %r has no reminder data; ignored", trigger.name)
            return
        result = await self._store.record_fire(
            str(data["reminder_id"]),
            to_micros(parse_rfc3339(str(data["fire_at"]))),
            self._clock.now_micros(),  # when it reaches the inbox, not when the job fired
            new_id(),
        )
        if result == "early":
            raise ReminderNotDue(f"reminder {data['reminder_id']} is not due yet")
        if result == "delivered":
            self._on_fire()
        log.debug("reminder %s: %s", data["reminder_id"], result)

    async def schedule_maintenance(self, scheduler: JobScheduler) -> None:
        """The daily retention job, on the same engine (idempotent)."""
        await scheduler.schedule(Job(MAINTENANCE_JOB, schedule="@daily"), overwrite=True)

    async def purge(self, retention: timedelta) -> int:
        count = await self._store.purge_done(to_micros(self._clock.now() - retention))
        log.info("retention: deleted %d completed tasks older than %s", count, retention)
        return count


KEEP: Any = object()  # "reminders" not given: keep the task's reminder specs


def _reschedule(
    old: Task, task: Task, specs: list[ReminderSpec] | None, now: datetime
) -> tuple[list[Reminder], list[Intent]]:
    """New reminders for `task` from `specs` (`None`: the default; `KEEP`: the old specs),
    reusing the old ids position by position so that jobs are overwritten in place; jobs of
    reminders that no longer exist are cancelled. A delivered reminder whose time does not
    change stays delivered."""
    if specs is KEEP:
        specs = [ReminderSpec(r.before, r.offset, r.at) for r in old.reminders]
        if not specs and old.due_at is None:
            specs = None  # a first due time brings the default reminder
        elif task.due_at is None:
            specs = [s for s in specs if s.at is not None]  # relative ones lose their anchor
    fresh = build_reminders(specs, task.due_at, now)
    for position, reminder in enumerate(fresh):
        if position < len(old.reminders):
            previous = old.reminders[position]
            reminder.id = previous.id
            if previous.state == "delivered" and previous.fire_at == reminder.fire_at:
                fresh[position] = previous
                continue
        if task.status == "done" and reminder.state == "scheduled":
            reminder.state = "skipped"
    kept = {r.id for r in fresh if r.state == "scheduled"}
    intents = [reminder_intent(task, r) for r in fresh if r.state == "scheduled"]
    intents += [_cancel(r) for r in old.reminders if r.state == "scheduled" and r.id not in kept]
    return fresh, intents
