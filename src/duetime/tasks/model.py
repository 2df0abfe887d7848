"""The task domain: pure data and rules, no I/O. All datetimes are aware UTC."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Priority = Literal["low", "medium", "high"]
Status = Literal["open", "done"]
ReminderState = Literal["scheduled", "delivered", "skipped", "missed", "failed"]

REMINDER_JOB_PREFIX = "reminder-"


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Reminder:
    """One reminder of a task. Exactly one of `before` (an ISO 8601 duration before the due
    time, as the user wrote it, with its parsed `offset`) and `at` is set.

    States: `scheduled` (a job will fire at `fire_at`), `delivered` (a notification was
    created), `skipped` (it will not fire: its time had passed when it was set, or the task was
    done or gone when it fired), `missed` and `failed` (set by later policies).
    """

    id: str
    fire_at: datetime
    state: ReminderState
    before: str | None = None
    offset: timedelta | None = None
    at: datetime | None = None
    delivered_at: datetime | None = None
    lateness_ms: float | None = None

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


@dataclass(frozen=True)
class ReminderSpec:
    """What a user asks for: `before` the due time (ISO 8601 text and its value) or `at` an
    instant."""

    before: str | None = None
    offset: timedelta | None = None
    at: datetime | None = None


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
    current = [ReminderSpec(r.before, r.offset, r.at) for r in old]
    return due_at == old_due_at and current == specs
