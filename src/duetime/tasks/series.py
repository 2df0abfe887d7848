"""Recurring tasks: starting a series and making its next occurrence. Pure, no I/O.

A series is a template plus a rule. Only one occurrence is open at a time: completing (or
skipping) it creates the next from the template, at the rule's next wall time after it, in
the series' time zone (the user's when the series has none). Occurrences that passed while
the task stayed open are not created: the next one is the first still in the future.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from duetime.tasks import recurrence
from duetime.tasks.model import ReminderSpec, Series, Task, TaskRuleError, build_reminders, new_id
from duetime.tasks.profile import Profile
from duetime.timefmt import parse_iso_duration

_DAYS = re.compile(r"P(\d{1,4})([DW])")
MAX_DAYS = 3660  # about 10 years


@dataclass(frozen=True)
class RepeatAfter:
    """ "Repeat this long after completion": whole days or weeks keep the series' time of
    day; a duration with a time part counts from the moment of completion."""

    text: str
    every: timedelta
    date_only: bool


def parse_repeat_after(text: str) -> RepeatAfter:
    match = _DAYS.fullmatch(text)
    if match:
        days = int(match[1]) * (7 if match[2] == "W" else 1)
        if days < 1:
            raise TaskRuleError("repeat_after must be at least one day (P1D) or 15 minutes")
        if days > MAX_DAYS:
            raise TaskRuleError(f"repeat_after {text!r} must be at most 10 years")
        return RepeatAfter(text, timedelta(days=days), True)
    try:
        every = parse_iso_duration(text)
    except ValueError as exc:
        raise TaskRuleError(f"repeat_after: {exc}") from None
    if every < recurrence.MIN_GAP or every > timedelta(days=MAX_DAYS):
        raise TaskRuleError(
            f"repeat_after {text!r} must be between 15 minutes (PT15M) and 10 years"
        )
    return RepeatAfter(text, every, False)


def zone_of(timezone: str | None, profile: Profile) -> ZoneInfo:
    """A task's or series' zone: its own, else the user's, else UTC."""
    return ZoneInfo(timezone or profile.timezone or "UTC")


def wall_time(task: Task, zone: ZoneInfo) -> datetime:
    assert task.due_at is not None
    return task.due_local or recurrence.to_wall(task.due_at, zone)


def start_series(
    task: Task,
    rule: str | None,
    repeat_after: str | None,
    specs: list[ReminderSpec] | None,
    profile: Profile,
    now: datetime,
) -> Series:
    """Make `task` the first occurrence of a new series (`rule`: a normalized RRULE)."""
    if task.due_at is None:
        raise TaskRuleError("a recurring task needs a due_at")
    if (rule is None) == (repeat_after is None):
        raise TaskRuleError("a task repeats by a recurrence rule or by repeat_after, not both")
    zone = zone_of(task.timezone, profile)
    start = wall_time(task, zone)
    rule = check(rule, repeat_after, start, zone)
    series = Series(
        id=new_id(),
        user_id=task.user_id,
        start_local=start,
        title=task.title,
        created_at=now,
        updated_at=now,
        rule=rule,
        repeat_after=repeat_after,
        timezone=task.timezone,
        description=task.description,
        priority=task.priority,
        tags=list(task.tags),
        reminders=specs,
    )
    task.series_id, task.occurrence, task.occurrence_local = series.id, 1, start
    return series


def check(
    rule: str | None, repeat_after: str | None, start: datetime, zone: ZoneInfo
) -> str | None:
    """Validate a series' repetition from wall time `start`; returns the normalized rule."""
    try:
        if rule is not None:
            rule = recurrence.normalize(rule)
            recurrence.validate(rule, start, zone)
        if repeat_after is not None:
            parse_repeat_after(repeat_after)
    except recurrence.RecurrenceError as exc:
        raise TaskRuleError(str(exc)) from None
    return rule


def next_task(series: Series, done: Task, profile: Profile, now: datetime) -> Task | None:
    """The occurrence after `done` (completed or skipped at `now`), or None when the series
    is stopped or over. Always due after `now`."""
    if not series.active:
        return None
    zone = zone_of(series.timezone, profile)
    index = done.occurrence or 1
    elapsed = False  # due a duration after completion: an instant, not a wall time
    if series.repeat_after is not None:
        repeat = parse_repeat_after(series.repeat_after)
        wall, due = recurrence.after_completion(
            repeat.every, repeat.date_only, now, series.start_local, zone
        )
        elapsed = not repeat.date_only
        index += 1
    else:
        assert series.rule is not None
        current = done.occurrence_local or series.start_local
        for wall, position in recurrence.following(
            series.rule, series.start_local, zone, current, index
        ):
            due = recurrence.to_instant(wall, zone)
            if due > now:
                index = position
                break
        else:
            return None
    return Task(
        id=new_id(),
        user_id=series.user_id,
        title=series.title,
        description=series.description,
        priority=series.priority,
        tags=list(series.tags),
        due_at=due,
        timezone=series.timezone,
        created_at=now,
        updated_at=now,
        reminders=build_reminders(series.reminders, due, now),
        due_local=None if elapsed else wall,
        series_id=series.id,
        occurrence=index,
        occurrence_local=wall,
    )


def upcoming(series: Series, task: Task, profile: Profile, count: int) -> list[datetime]:
    """The next `count` due wall times after `task` by the rule (none for repeat_after:
    they depend on when the task is done)."""
    if series.rule is None or not series.active:
        return []
    zone = zone_of(series.timezone, profile)
    current = task.occurrence_local or series.start_local
    return recurrence.upcoming(
        series.rule, series.start_local, zone, current, task.occurrence or 1, count
    )
