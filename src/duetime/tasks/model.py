"""The task domain: pure data and rules, no I/O. All datetimes are aware UTC."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from duetime.jobs.scope import internal
from duetime.timefmt import format_rfc3339

Priority = Literal["low", "medium", "high"]
Status = Literal["open", "done", "skipped"]
ReminderState = Literal["scheduled", "delivered", "skipped", "missed", "failed"]

REMINDER_JOB_PREFIX = internal("reminder-")
"""The keys of reminder jobs, in duetime's own scope (`duetime.jobs.scope`)."""


def new_id() -> str:
    """A random (version 4) UUID as 32 hex digits; `uuid.uuid4().hex` at a third of the cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


def reminder_job(
    task_id: str, reminder_id: str, fire_at: datetime, release_at: datetime | None = None
) -> dict[str, Any]:
    """The job (Dapr's JSON shape) that fires a reminder: at `fire_at`, or at `release_at`
    when quiet hours held it. The occurrence is always identified by `fire_at`."""
    due = release_at or fire_at
    data = {"task_id": task_id, "reminder_id": reminder_id, "fire_at": format_rfc3339(fire_at)}
    if release_at is not None:
        data["release_at"] = format_rfc3339(release_at)
    return {"dueTime": format_rfc3339(due), "data": data}


@dataclass
class Reminder:
    """One reminder of a task. Exactly one of `before` (an ISO 8601 duration before the due
    time, as the user wrote it, with its parsed `offset`) and `at` is set.

    States: `scheduled` (a job will fire at `fire_at`), `delivered` (a notification was
    created), `skipped` (it will not fire: its time had passed when it was set, or the task was
    done or gone when it fired), `missed` (it fired later than the misfire grace and the policy
    is to skip such reminders), `failed` (reserved for delivery failures).

    `urgent` reminders ignore the user's quiet hours; `held_until` is set while a reminder that
    fell in quiet hours waits for them to end. A `snooze` reminder was added by snoozing a
    notification: it is kept as it is when the task's due time or reminders change.
    """

    id: str
    fire_at: datetime
    state: ReminderState
    before: str | None = None
    offset: timedelta | None = None
    at: datetime | None = None
    delivered_at: datetime | None = None
    lateness_ms: float | None = None
    urgent: bool = False
    snooze: bool = False
    held_until: datetime | None = None

    @property
    def job_name(self) -> str:
        return f"{REMINDER_JOB_PREFIX}{self.id}"


@dataclass
class Task:
    id: str
    user_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    priority: Priority = "medium"
    tags: list[str] = field(default_factory=list)
    due_at: datetime | None = None
    timezone: str | None = None
    status: Status = "open"
    version: int = 1
    completed_at: datetime | None = None
    reminders: list[Reminder] = field(default_factory=list)
    due_local: datetime | None = None
    """The due time as a naive wall time, when it was stated in local time; with no
    `timezone`, in the user's time zone, and it follows the user when that zone changes."""
    series_id: str | None = None
    occurrence: int | None = None
    """1-based position in its series."""
    occurrence_local: datetime | None = None
    """The rule's wall time for this occurrence (kept when only this occurrence is moved)."""

    @property
    def follows_user(self) -> bool:
        return self.timezone is None and self.due_local is not None

    @property
    def closed(self) -> bool:
        return self.status != "open"


@dataclass
class Series:
    """A recurring task: the template each new occurrence is made from, and its rule.
    Exactly one of `rule` (normalized RRULE) and `repeat_after` (ISO 8601 duration after
    completion) is set. `timezone` None: the user's time zone."""

    id: str
    user_id: str
    start_local: datetime
    title: str
    created_at: datetime
    updated_at: datetime
    rule: str | None = None
    repeat_after: str | None = None
    timezone: str | None = None
    description: str = ""
    priority: Priority = "medium"
    tags: list[str] = field(default_factory=list)
    reminders: list[ReminderSpec] | None = None
    active: bool = True


@dataclass(frozen=True)
class Notification:
    """A reminder occurrence in its user's inbox. `late`: it fired later than the misfire
    grace (after downtime, say)."""

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
    late: bool = False


@dataclass(frozen=True)
class ReminderSpec:
    """What a user asks for: `before` the due time (ISO 8601 text and its value) or `at` an
    instant."""

    before: str | None = None
    offset: timedelta | None = None
    at: datetime | None = None
    urgent: bool = False


class TaskRuleError(ValueError):
    """A request that is well-formed but breaks a task rule; the message says which."""


def build_reminders(
    specs: list[ReminderSpec] | None, due_at: datetime | None, now: datetime
) -> list[Reminder]:
    """Reminders for a task due at `due_at`. `None` means the default: one reminder at the
    due time when there is one. A reminder whose time has already passed is `skipped`."""
    if specs is None:
        specs = [ReminderSpec(before="PT0S", offset=timedelta(0))] if due_at else []
    reminders = []
    for spec in specs:
        if spec.at is not None:
            fire_at = spec.at
        else:
            if due_at is None:
                raise TaskRuleError(
                    f'reminder "before": "{spec.before}" needs the task to have a due_at'
                )
            assert spec.offset is not None
            try:
                fire_at = due_at - spec.offset
            except OverflowError:
                raise TaskRuleError(
                    f'reminder "before": "{spec.before}" reaches outside the calendar'
                ) from None
        state: ReminderState = "scheduled" if fire_at > now else "skipped"
        reminders.append(
            Reminder(
                id=new_id(),
                fire_at=fire_at,
                state=state,
                before=spec.before,
                offset=spec.offset,
                at=spec.at,
                urgent=spec.urgent,
            )
        )
    return reminders


def same_schedule(
    old: list[Reminder],
    specs: list[ReminderSpec] | None,
    due_at: datetime | None,
    old_due_at: datetime | None,
) -> bool:
    """True when an update leaves reminders as they are (nothing to reschedule)."""
    if specs is None:
        return due_at == old_due_at
    return due_at == old_due_at and specs_of(old) == specs


def specs_of(reminders: list[Reminder]) -> list[ReminderSpec]:
    """What the user asked for, for the task's own (not snoozed) reminders."""
    return [ReminderSpec(r.before, r.offset, r.at, r.urgent) for r in reminders if not r.snooze]
