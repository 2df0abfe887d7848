"""Task use cases: every change to a task and the scheduling it causes, and what happens when a
reminder fires. Ownership is checked here: a user sees only their own tasks; anyone else's
are "not found"."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from duetime import metrics
from duetime.clock import Clock
from duetime.events.model import TaskEventKind, task_event
from duetime.jobs import Job, JobScheduler, Trigger
from duetime.jobs.scope import internal
from duetime.tasks import recurrence
from duetime.tasks.model import (
    Notification,
    Priority,
    Reminder,
    ReminderSpec,
    Series,
    Status,
    Task,
    TaskRuleError,
    build_reminders,
    new_id,
    reminder_job,
    specs_of,
)
from duetime.tasks.profile import Profile
from duetime.tasks.scheduling import Intent
from duetime.tasks.series import check, next_task, start_series, upcoming, wall_time, zone_of
from duetime.tasks.store import SqlTaskStore, TaskQuery
from duetime.timefmt import parse_rfc3339, to_micros
from duetime.tracing import Tracing, current

log = logging.getLogger(__name__)

MAINTENANCE_JOB = internal("duetime-maintenance-retention")
_SERIES_FIELDS = ("title", "description", "priority", "tags", "reminders", "timezone")


class TaskNotFound(LookupError):
    pass


class ReminderNotDue(Exception):
    """A trigger arrived before its reminder's time; failing it makes the engine retry."""


class TaskBusy(Exception):
    """A change lost the race to concurrent changes several times in a row."""


class TaskConflict(Exception):
    """A change that the task's state does not allow (snoozing a done task, say)."""


class VersionMismatch(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the task is at version {current}")
        self.current = current


@dataclass(frozen=True)
class TaskInput:
    """A validated task as the user states it. `due_at` is aware (an instant) or naive (a
    wall time in `timezone`, else in the user's zone); `reminders=None` means the default;
    `recurrence` is a normalized RRULE."""

    title: str
    description: str = ""
    priority: Priority = "medium"
    tags: list[str] = field(default_factory=list)
    due_at: datetime | None = None
    timezone: str | None = None
    reminders: list[ReminderSpec] | None = None
    status: Status = "open"
    recurrence: str | None = None
    repeat_after: str | None = None


def reminder_intent(task: Task, reminder: Reminder) -> Intent:
    return Intent(reminder.job_name, reminder_job(task.id, reminder.id, reminder.fire_at))


def _cancel(reminder: Reminder) -> Intent:
    return Intent(reminder.job_name, None)


class _Profiles:
    """The user's profile, read once per command and only if needed."""

    def __init__(self, store: SqlTaskStore, user_id: str) -> None:
        self._store, self._user_id = store, user_id
        self._profile: Profile | None = None

    async def get(self) -> Profile:
        if self._profile is None:
            self._profile = await self._store.profile(self._user_id)
        return self._profile


def _needs_profile(due: datetime | None, timezone: str | None, repeats: bool) -> bool:
    return timezone is None and (repeats or (due is not None and due.tzinfo is None))


def _resolve_due(
    due: datetime | None, timezone: str | None, profile: Profile | None
) -> tuple[datetime | None, datetime | None]:
    """(instant, wall time) of a due time: an aware one is an instant; a naive one is a wall
    time in `timezone`, else in the user's zone."""
    if due is None or due.tzinfo is not None:
        return due, None
    zone_name = timezone or (profile.timezone if profile else None)
    if zone_name is None:
        raise TaskRuleError(
            f"due_at {due.isoformat()} has no UTC offset: add one, give the task a timezone, "
            "or set your time zone with PUT /api/me"
        )
    return recurrence.to_instant(due, ZoneInfo(zone_name)), due


class TaskService:
    def __init__(
        self,
        store: SqlTaskStore,
        clock: Clock,
        *,
        on_events: Callable[[], None] = lambda: None,
        on_fire: Callable[[], None] = lambda: None,
        tracing: Tracing | None = None,
    ) -> None:
        """`on_events` is called after every commit that wrote events to the outbox (it
        wakes the event relay); `on_fire` after a reminder reached the inbox (it wakes the
        event relay and the delivery worker). `tracing`: spans of the task changes, the
        scheduling of their jobs and each fire (None: tracing is off)."""
        self._store = store
        self._clock = clock
        self._on_events = on_events
        self._on_fire = on_fire
        self._tracing = tracing

    @contextmanager
    def _span(self, name: str, **attributes: int) -> Iterator[None]:
        if self._tracing is None:
            yield
            return
        prefixed = {f"duetime.{key}": value for key, value in attributes.items()}
        with self._tracing.span(f"duetime.tasks.{name}", prefixed):
            yield

    @contextmanager
    def _scheduling(self, intents: list[Intent]) -> Iterator[list[Intent]]:
        """The block that commits a change with its reminder jobs, in a span of its own
        whose context the jobs keep (their triggers link to it)."""
        jobs = sum(1 for i in intents if i.job is not None)
        if self._tracing is None or not jobs:
            yield intents
            return
        attributes = {"duetime.jobs.count": jobs}
        with self._tracing.span("duetime.jobs.schedule", attributes, kind=SpanKind.PRODUCER):
            here = current()
            yield [replace(i, trace_context=here) if i.job is not None else i for i in intents]

    def now(self) -> datetime:
        return self._clock.now()

    # -- commands --------------------------------------------------------------------------
    async def create(
        self, user_id: str, inputs: list[TaskInput], *, batch: bool = False
    ) -> tuple[list[Task], int]:
        """Create tasks (all or none) and schedule their reminders; returns the tasks and how
        many reminders were scheduled. In a `batch`, a rule error names the task's index."""
        with self._span("create", tasks=len(inputs)):
            return await self._create(user_id, inputs, batch)

    async def _create(
        self, user_id: str, inputs: list[TaskInput], batch: bool
    ) -> tuple[list[Task], int]:
        now = self._clock.now()
        profiles = _Profiles(self._store, user_id)
        tasks, all_series = [], []
        for index, inp in enumerate(inputs):
            try:
                repeats = inp.recurrence is not None or inp.repeat_after is not None
                profile = (
                    await profiles.get()
                    if _needs_profile(inp.due_at, inp.timezone, repeats)
                    else None
                )
                task = self._new_task(user_id, inp, now, profile)
                if repeats:
                    all_series.append(
                        start_series(
                            task,
                            inp.recurrence,
                            inp.repeat_after,
                            inp.reminders,
                            profile or await profiles.get(),
                            now,
                        )
                    )
                tasks.append(task)
            except TaskRuleError as exc:
                raise TaskRuleError(f"tasks[{index}]: {exc}" if batch else str(exc)) from None
        intents = [
            reminder_intent(t, r) for t in tasks for r in t.reminders if r.state == "scheduled"
        ]
        events = [task_event("created", t, now) for t in tasks]
        with self._scheduling(intents) as traced:
            await self._store.add(tasks, traced, events, all_series)
        self._on_events()
        return tasks, len(intents)

    def _new_task(
        self, user_id: str, inp: TaskInput, now: datetime, profile: Profile | None
    ) -> Task:
        due_at, due_local = _resolve_due(inp.due_at, inp.timezone, profile)
        task = Task(
            id=new_id(),
            user_id=user_id,
            title=inp.title,
            description=inp.description,
            priority=inp.priority,
            tags=list(inp.tags),
            due_at=due_at,
            due_local=due_local,
            timezone=inp.timezone,
            status=inp.status,
            created_at=now,
            updated_at=now,
            completed_at=now if inp.status != "open" else None,
        )
        task.reminders = build_reminders(inp.reminders, due_at, now)
        if task.closed:
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
        whole_series: bool = False,
    ) -> Task:
        """Apply `changes` (TaskInput field names → new values). Reminders are rescheduled
        only when the due time or the reminders change; status changes complete, skip or
        reopen. On an occurrence of a series, `whole_series` applies the changes to the
        series' template too (and a new due time re-anchors the series)."""
        with self._span("update"):
            return await self._update(user_id, task_id, changes, if_version, whole_series)

    async def _update(
        self,
        user_id: str,
        task_id: str,
        changes: dict[str, Any],
        if_version: int | None,
        whole_series: bool,
    ) -> Task:
        for _ in range(5):  # optimistic concurrency: retry on a concurrent change
            old = await self.get(user_id, task_id)
            if if_version is not None and old.version != if_version:
                raise VersionMismatch(old.version)
            now = self._clock.now()
            profiles = _Profiles(self._store, user_id)
            series = await self._series_of(old)
            task, intents = await self._apply(old, changes, now, profiles)
            new_tasks: list[Task] = []
            changed_series = await self._series_change(
                old, task, changes, series, whole_series, profiles, now
            )
            if changed_series is not None:
                series = changed_series
            if series is not None and series.active and task.due_at is None:
                raise TaskRuleError(
                    "an occurrence of a recurring task needs a due_at; to end the series, "
                    'send "recurrence": null with ?scope=series'
                )
            if old.status == "open" and task.closed and series is not None:
                following = next_task(series, task, await profiles.get(), now)
                if following is not None:
                    new_tasks.append(following)
                    intents += [
                        reminder_intent(following, r)
                        for r in following.reminders
                        if r.state == "scheduled"
                    ]
            kind: TaskEventKind = (
                "completed" if task.status == "done" and old.status != "done" else "updated"
            )
            events = [task_event(kind, task, now)]
            events += [task_event("created", t, now) for t in new_tasks]
            with self._scheduling(intents) as traced:
                saved = await self._store.save(
                    task, old.version, traced, events, new_tasks=new_tasks, series=changed_series
                )
            if saved:
                self._on_events()
                return task
            if if_version is not None:
                raise VersionMismatch((await self.get(user_id, task_id)).version)
        raise TaskBusy(f"task {task_id} kept changing while this change was applied; retry")

    async def _series_of(self, task: Task) -> Series | None:
        if task.series_id is None:
            return None
        return await self._store.get_series(task.user_id, task.series_id)

    async def _apply(
        self, old: Task, changes: dict[str, Any], now: datetime, profiles: _Profiles
    ) -> tuple[Task, list[Intent]]:
        plain = {
            k: v
            for k, v in changes.items()
            if k not in ("reminders", "status", "due_at", "recurrence", "repeat_after")
        }
        task = replace(old, **plain, version=old.version + 1, updated_at=now)
        task.reminders = list(old.reminders)
        if "due_at" in changes or ("timezone" in changes and old.due_local is not None):
            due = changes["due_at"] if "due_at" in changes else old.due_local
            profile = await profiles.get() if _needs_profile(due, task.timezone, False) else None
            task.due_at, task.due_local = _resolve_due(due, task.timezone, profile)
        intents: list[Intent] = []
        if "reminders" in changes or task.due_at != old.due_at:
            specs = changes["reminders"] if "reminders" in changes else KEEP
            task.reminders, intents = _reschedule(old, task, specs, now)
        status = changes.get("status", old.status)
        if status == "skipped" and old.series_id is None:
            raise TaskRuleError("only an occurrence of a recurring task can be skipped")
        if status != old.status:
            intents = self._set_status(task, status, now, intents)
        return task, intents

    async def _series_change(
        self,
        old: Task,
        task: Task,
        changes: dict[str, Any],
        series: Series | None,
        whole_series: bool,
        profiles: _Profiles,
        now: datetime,
    ) -> Series | None:
        """The new or changed series a change brings, if any."""
        repeat_given = "recurrence" in changes or "repeat_after" in changes
        rule = changes.get("recurrence")
        after = changes.get("repeat_after")
        if series is None or not series.active:
            if repeat_given and (rule is not None or after is not None):
                specs = changes["reminders"] if "reminders" in changes else None
                if "reminders" not in changes and task.reminders:
                    specs = specs_of(task.reminders)
                return start_series(task, rule, after, specs, await profiles.get(), now)
            return None
        if repeat_given and (rule, after) == (series.rule, series.repeat_after):
            repeat_given = False
        if not whole_series:
            if repeat_given:
                raise TaskRuleError(
                    "recurrence and repeat_after belong to the series: change them with "
                    "?scope=series"
                )
            return None
        updated = replace(series, updated_at=now)
        for name in _SERIES_FIELDS:
            if name in changes:
                setattr(updated, name, changes[name])
        if repeat_given:
            if rule is None and after is None:
                updated.active = False  # no rule any more: the series stops here
            else:
                updated.rule, updated.repeat_after = rule, after
        if task.due_at is not None and (
            "due_at" in changes or "timezone" in changes or repeat_given
        ):
            zone = zone_of(updated.timezone, await profiles.get())
            updated.start_local = wall_time(task, zone)
            task.occurrence_local = updated.start_local
        if updated.active and task.due_at is not None:
            zone = zone_of(updated.timezone, await profiles.get())
            updated.rule = check(updated.rule, updated.repeat_after, updated.start_local, zone)
        return updated

    def _set_status(
        self, task: Task, status: Status, now: datetime, intents: list[Intent]
    ) -> list[Intent]:
        task.status = status
        by_name = {i.job_name: i for i in intents}
        if status != "open":
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

    async def skip(self, user_id: str, task_id: str) -> Task:
        return await self.update(user_id, task_id, {"status": "skipped"})

    async def reopen(self, user_id: str, task_id: str) -> Task:
        return await self.update(user_id, task_id, {"status": "open"})

    async def delete(self, user_id: str, task_id: str) -> None:
        """Delete the task and cancel its reminders. Deleting the open occurrence of a
        recurring task ends its series (nothing is left to complete)."""
        with self._span("delete"):
            await self._delete(user_id, task_id)

    async def _delete(self, user_id: str, task_id: str) -> None:
        task = await self.get(user_id, task_id)
        intents = [_cancel(r) for r in task.reminders if r.state == "scheduled"]
        now = self._clock.now()
        events = [task_event("deleted", task, now)]
        if not await self._store.remove(user_id, task_id, intents, events, to_micros(now)):
            raise TaskNotFound(task_id)
        self._on_events()
        if task.series_id is not None and not task.closed:
            series = await self._store.get_series(user_id, task.series_id)
            if series is not None and series.active:
                await self._store.put_series(replace(series, active=False, updated_at=now))

    # -- series ----------------------------------------------------------------------------
    async def series(self, user_id: str, series_id: str) -> tuple[Series, list[Task]]:
        found = await self._store.get_series(user_id, series_id)
        if found is None:
            raise TaskNotFound(series_id)
        return found, await self._store.series_tasks(user_id, series_id)

    async def stop_series(self, user_id: str, series_id: str) -> Series:
        """No further occurrences; the open one stays as it is."""
        found = await self._store.get_series(user_id, series_id)
        if found is None:
            raise TaskNotFound(series_id)
        stopped = replace(found, active=False, updated_at=self._clock.now())
        await self._store.put_series(stopped)
        return stopped

    async def occurrences(self, user_id: str, task_id: str, count: int) -> list[datetime]:
        """The next `count` due times (aware UTC) after this occurrence."""
        task = await self.get(user_id, task_id)
        found = await self._series_of(task)
        if found is None:
            return []
        profile = await self._store.profile(user_id)
        zone = zone_of(found.timezone, profile)
        return [recurrence.to_instant(w, zone) for w in upcoming(found, task, profile, count)]

    # -- the user's time -------------------------------------------------------------------
    async def profile(self, user_id: str) -> Profile:
        return await self._store.profile(user_id)

    async def set_profile(self, profile: Profile) -> int:
        """Save the user's time settings. When the time zone changes, tasks stated in local
        time follow it: their due times and reminders move. Returns how many moved."""
        before = await self._store.profile(profile.user_id)
        await self._store.put_profile(profile, self._clock.now_micros())
        if before.timezone == profile.timezone:
            return 0
        moved, after_id = 0, ""
        while True:
            page = await self._store.following_tasks(profile.user_id, after_id, 200)
            for task in page:
                try:
                    await self.update(profile.user_id, task.id, {"due_at": task.due_local})
                    moved += 1
                except TaskNotFound:
                    pass  # deleted meanwhile
            if len(page) < 200:
                return moved
            after_id = page[-1].id

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

    async def snooze(
        self, user_id: str, notification_id: str, until: datetime, *, urgent: bool = False
    ) -> Reminder:
        """Remind again at `until`: a one-off reminder on the notification's task."""
        note = await self._store.notification(user_id, notification_id)
        if note is None:
            raise TaskNotFound(notification_id)
        return await self.snooze_task(user_id, note.task_id, until, urgent=urgent)

    async def snooze_task(
        self, user_id: str, task_id: str, until: datetime, *, urgent: bool = False
    ) -> Reminder:
        """Remind again at `until`: a one-off reminder on the task, delivered once."""
        with self._span("snooze"):
            return await self._snooze_task(user_id, task_id, until, urgent)

    async def _snooze_task(
        self, user_id: str, task_id: str, until: datetime, urgent: bool
    ) -> Reminder:
        if until <= self._clock.now():
            raise TaskRuleError("snooze until a time in the future")
        reminder = Reminder(
            id=new_id(), fire_at=until, state="scheduled", at=until, urgent=urgent, snooze=True
        )
        for _ in range(5):
            task = await self.get(user_id, task_id)
            if task.closed:
                raise TaskConflict(f"task {task.id} is {task.status}: reopen it to snooze")
            changed = replace(task, version=task.version + 1, updated_at=self._clock.now())
            changed.reminders = [*task.reminders, reminder]
            events = [task_event("updated", changed, self._clock.now())]
            with self._scheduling([reminder_intent(task, reminder)]) as traced:
                saved = await self._store.save(changed, task.version, traced, events)
            if saved:
                self._on_events()
                return reminder
        raise TaskBusy(f"task {task_id} kept changing while it was snoozed; retry")

    # -- triggers --------------------------------------------------------------------------
    @property
    def reminder_handler(self) -> Callable[[Trigger], Awaitable[None]]:
        """What the jobs engine calls for a reminder's trigger: `on_reminder`, in a span of
        its own when tracing is on (off, the engine calls `on_reminder` itself: no extra
        coroutine on the fire path)."""
        return self.on_reminder if self._tracing is None else self._on_reminder_traced

    async def _on_reminder_traced(self, trigger: Trigger) -> None:
        assert self._tracing is not None
        with self._tracing.span("duetime.reminder.fire"):
            await self.on_reminder(trigger, current())

    async def on_reminder(self, trigger: Trigger, trace_context: str | None = None) -> None:
        """A reminder's job fired: deliver it to the inbox once, however often it fires.
        `trace_context`: the fire's span, which its deliveries are children of."""
        data = trigger.data
        if not isinstance(data, dict) or "reminder_id" not in data or "fire_at" not in data:
            log.error("reminder trigger %r has no reminder data; ignored", trigger.name)
            return
        release = data.get("release_at")
        result = await self._store.record_fire(
            str(data["reminder_id"]),
            to_micros(parse_rfc3339(str(data["fire_at"]))),
            self._clock.now_micros(),  # when it reaches the inbox, not when the job fired
            new_id(),
            None if release is None else to_micros(parse_rfc3339(str(release))),
            trace_context,
        )
        if trace_context is not None:
            trace.get_current_span().set_attribute("duetime.reminder.result", result)
        if result == "early":
            raise ReminderNotDue(f"reminder {data['reminder_id']} is not due yet")
        if result in ("delivered", "late"):
            metrics.delivery_attempted("inbox", "success")
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
    change stays delivered. Snoozed reminders are kept as they are."""
    own = [r for r in old.reminders if not r.snooze]
    snoozed = [r for r in old.reminders if r.snooze]
    if specs is KEEP:
        specs = specs_of(own)
        if not specs and old.due_at is None:
            specs = None  # a first due time brings the default reminder
        elif task.due_at is None:
            specs = [s for s in specs if s.at is not None]  # relative ones lose their anchor
    fresh = build_reminders(specs, task.due_at, now)
    for position, reminder in enumerate(fresh):
        if position < len(own):
            previous = own[position]
            reminder.id = previous.id
            if previous.state == "delivered" and previous.fire_at == reminder.fire_at:
                fresh[position] = previous
                continue
        if task.closed and reminder.state == "scheduled":
            reminder.state = "skipped"
    kept = {r.id for r in fresh if r.state == "scheduled"}
    intents = [reminder_intent(task, r) for r in fresh if r.state == "scheduled"]
    intents += [_cancel(r) for r in own if r.state == "scheduled" and r.id not in kept]
    return fresh + snoozed, intents
