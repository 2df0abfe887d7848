"""Request and response bodies of the task API, and their conversion to the domain."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from duetime.tasks import recurrence
from duetime.tasks.model import Notification, Reminder, ReminderSpec, Series, Task
from duetime.tasks.profile import Profile, QuietHours
from duetime.tasks.service import TaskInput
from duetime.timefmt import format_rfc3339, from_micros, parse_iso_duration, parse_rfc3339

Title = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
MAX_REMINDERS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class ReminderIn(_Strict):
    """Either `before` (ISO 8601 duration before the due time) or `at` (RFC3339 instant);
    `urgent` ones ignore quiet hours."""

    before: str | None = None
    at: str | None = None
    urgent: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> ReminderIn:
        if (self.before is None) == (self.at is None):
            raise ValueError('a reminder is either {"before": "PT10M"} or {"at": "<RFC3339>"}')
        return self

    def spec(self) -> ReminderSpec:
        if self.before is not None:
            try:
                offset = parse_iso_duration(self.before)
            except ValueError as exc:
                raise ValueError(f'reminder "before": {exc}') from None
            if offset < timedelta(0):
                raise ValueError(f'reminder "before": {self.before!r} must not be negative')
            return ReminderSpec(before=self.before, offset=offset, urgent=self.urgent)
        assert self.at is not None
        return ReminderSpec(at=parse_instant_field("reminder at", self.at), urgent=self.urgent)


class TaskFields(_Strict):
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    priority: Literal["low", "medium", "high"] = "medium"
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    due_at: str | None = None
    timezone: str | None = None
    reminders: Annotated[list[ReminderIn], Field(max_length=MAX_REMINDERS)] | None = None
    status: Literal["open", "done"] = "open"
    recurrence: Annotated[str, StringConstraints(max_length=500)] | None = None
    repeat_after: Annotated[str, StringConstraints(max_length=64)] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @field_validator("recurrence")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        return None if value is None else recurrence.normalize(value)


class TaskIn(TaskFields):
    """POST and PUT body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Pay rent",
                    "due_at": "2030-01-01T09:00:00",
                    "timezone": "Europe/Paris",
                    "reminders": [{"before": "PT10M"}, {"before": "PT0S"}],
                    "tags": ["home"],
                }
            ]
        }
    )

    title: Title

    @field_validator("title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be blank")
        return value

    def to_input(self) -> TaskInput:
        return TaskInput(
            title=self.title,
            description=self.description,
            priority=self.priority,
            tags=list(dict.fromkeys(self.tags)),
            due_at=parse_due(self.due_at, self.timezone),
            timezone=self.timezone,
            reminders=None if self.reminders is None else [r.spec() for r in self.reminders],
            status=self.status,
            recurrence=self.recurrence,
            repeat_after=self.repeat_after,
        )


class TaskPatch(_Strict):
    """PATCH body: only the fields given change; `"due_at": null` removes the due time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"due_at": "2030-01-02T09:00:00+01:00", "priority": "high"}]
        }
    )

    title: Title | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    priority: Literal["low", "medium", "high"] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    due_at: str | None = None
    timezone: str | None = None
    reminders: Annotated[list[ReminderIn], Field(max_length=MAX_REMINDERS)] | None = None
    status: Literal["open", "done", "skipped"] | None = None
    recurrence: Annotated[str, StringConstraints(max_length=500)] | None = None
    repeat_after: Annotated[str, StringConstraints(max_length=64)] | None = None

    @field_validator("recurrence")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        return None if value is None else recurrence.normalize(value)

    @model_validator(mode="after")
    def _no_nulls(self) -> TaskPatch:
        nullable = {"due_at", "timezone", "reminders", "recurrence", "repeat_after"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self, current: Task) -> dict[str, Any]:
        given = self.model_fields_set
        out: dict[str, Any] = {}
        for name in ("title", "description", "priority", "status", "recurrence", "repeat_after"):
            if name in given:
                out[name] = getattr(self, name)
        if "tags" in given:
            out["tags"] = list(dict.fromkeys(self.tags or []))
        if "timezone" in given:
            if self.timezone is not None:
                zone(self.timezone)
            out["timezone"] = self.timezone
        if "due_at" in given:
            tz = self.timezone if "timezone" in given else current.timezone
            out["due_at"] = parse_due(self.due_at, tz)
        if "reminders" in given:
            out["reminders"] = (
                None if self.reminders is None else [r.spec() for r in self.reminders]
            )
        return out


class BatchIn(_Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tasks": [
                        {"title": "Pay rent", "due_at": "2030-01-01T09:00:00Z"},
                        {"title": "Call"},
                    ]
                }
            ]
        }
    )

    tasks: Annotated[list[TaskIn], Field(min_length=1, max_length=10_000)]


class ReminderOut(BaseModel):
    id: str
    before: str | None = None
    at: str | None = None
    fire_at: str
    state: str
    delivered_at: str | None = None
    lateness_ms: float | None = None
    urgent: bool = False
    snooze: bool = False
    held_until: str | None = None

    @classmethod
    def of(cls, r: Reminder) -> ReminderOut:
        return cls(
            id=r.id,
            before=r.before,
            at=_fmt(r.at),
            fire_at=format_rfc3339(r.fire_at),
            state=r.state,
            delivered_at=_fmt(r.delivered_at),
            lateness_ms=r.lateness_ms,
            urgent=r.urgent,
            snooze=r.snooze,
            held_until=_fmt(r.held_until),
        )


class TaskOut(BaseModel):
    id: str
    title: str
    description: str
    priority: str
    tags: list[str]
    due_at: str | None
    timezone: str | None
    status: str
    version: int
    created_at: str
    updated_at: str
    completed_at: str | None
    reminders: list[ReminderOut]
    local_due_at: str | None = None
    """The due time as the wall time it was stated in, when it was stated in local time."""
    follows_user_timezone: bool = False
    series_id: str | None = None
    occurrence: int | None = None

    @classmethod
    def of(cls, t: Task, user_zone: str | None = None) -> TaskOut:
        """`user_zone` is the owner's time zone, for a task that follows it."""
        return cls(
            id=t.id,
            title=t.title,
            description=t.description,
            priority=t.priority,
            tags=t.tags,
            due_at=_fmt(t.due_at),
            timezone=t.timezone,
            status=t.status,
            version=t.version,
            created_at=format_rfc3339(t.created_at),
            updated_at=format_rfc3339(t.updated_at),
            completed_at=_fmt(t.completed_at),
            reminders=[ReminderOut.of(r) for r in t.reminders],
            local_due_at=_local_due(t, user_zone),
            follows_user_timezone=t.follows_user,
            series_id=t.series_id,
            occurrence=t.occurrence,
        )


def _local_due(t: Task, user_zone: str | None) -> str | None:
    """The wall time the reminder comes at. It is the one typed, except inside a DST gap:
    02:30 on a night the clocks jump from 02:00 to 03:00 is due at 03:30, and shows so (the
    typed 02:30 is kept: a series goes on at 02:30 on ordinary days)."""
    if t.due_local is None:
        return None
    zone_name = t.timezone or user_zone
    if t.due_at is None or zone_name is None:
        return t.due_local.isoformat()
    return recurrence.to_wall(t.due_at, ZoneInfo(zone_name)).isoformat()


def needs_user_zone(tasks: list[Task]) -> bool:
    return any(t.follows_user and t.due_at is not None for t in tasks)


class TaskPage(BaseModel):
    tasks: list[TaskOut]
    next_cursor: str | None


class BatchOut(BaseModel):
    tasks: list[TaskOut]
    scheduled_reminders: int


class NotificationOut(BaseModel):
    id: str
    task_id: str
    reminder_id: str
    title: str
    message: str
    scheduled_for: str
    fired_at: str
    lateness_ms: float
    read: bool
    late: bool

    @classmethod
    def of(cls, n: Notification) -> NotificationOut:
        return cls(
            id=n.id,
            task_id=n.task_id,
            reminder_id=n.reminder_id,
            title=n.title,
            message=n.message,
            scheduled_for=format_rfc3339(from_micros(n.scheduled_for_us)),
            fired_at=format_rfc3339(from_micros(n.fired_us)),
            lateness_ms=n.lateness_ms,
            read=n.read,
            late=n.late,
        )


class NotificationPage(BaseModel):
    notifications: list[NotificationOut]
    next_cursor: str | None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name like Europe/Paris"
        ) from None


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)


def _parse(what: str, text: str) -> datetime:
    """RFC3339, the offset optional here; aware or naive as written."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"{what} {text!r} is not an RFC3339 date-time like 2026-03-01T09:00:00Z")
    if match["offset"]:
        return parse_rfc3339(text)
    return datetime.fromisoformat(text[:26].replace("t", "T"))


def parse_instant_field(what: str, text: str) -> datetime:
    value = _parse(what, text)
    if value.tzinfo is None:
        raise ValueError(f"{what} {text!r} needs a UTC offset, e.g. {text}Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{what} {text!r} is outside the supported calendar") from None


def parse_due(text: str | None, timezone: str | None) -> datetime | None:
    """RFC3339 with an offset (an instant, aware UTC); without one, a wall time (naive) that
    the service places in `timezone` or the user's zone (a wall time that does not exist moves
    forward by the gap; a repeated one means its first occurrence)."""
    if text is None:
        return None
    value = _parse("due_at", text)
    if value.tzinfo is None:
        if timezone is not None:
            try:
                recurrence.to_instant(value, zone(timezone))
            except OverflowError:
                raise ValueError(f"due_at {text!r} is outside the supported calendar") from None
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"due_at {text!r} is outside the supported calendar") from None


def _fmt(value: datetime | None) -> str | None:
    return None if value is None else format_rfc3339(value)


_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


class QuietHoursIO(_Strict):
    """Local wall-clock hours, "HH:MM", `start` inclusive, `end` exclusive."""

    start: str
    end: str

    @model_validator(mode="after")
    def _times(self) -> QuietHoursIO:
        for name in ("start", "end"):
            if not _HHMM.fullmatch(getattr(self, name)):
                raise ValueError(f"quiet_hours {name} must be a time like 22:00")
        if self.start == self.end:
            raise ValueError("quiet_hours start and end must differ")
        return self

    def value(self) -> QuietHours:
        return QuietHours(time.fromisoformat(self.start), time.fromisoformat(self.end))


class ProfileIO(_Strict):
    """The user's time settings (PUT replaces them)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"timezone": "Europe/London", "quiet_hours": {"start": "22:00", "end": "07:00"}}
            ]
        }
    )

    timezone: str | None = None
    quiet_hours: QuietHoursIO | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    def to_profile(self, user_id: str) -> Profile:
        quiet = None if self.quiet_hours is None else self.quiet_hours.value()
        return Profile(user_id, self.timezone, quiet)

    @classmethod
    def of(cls, p: Profile) -> ProfileIO:
        q = p.quiet_hours
        return cls(
            timezone=p.timezone,
            quiet_hours=None
            if q is None
            else QuietHoursIO(start=q.start.strftime("%H:%M"), end=q.end.strftime("%H:%M")),
        )


class SnoozeIn(_Strict):
    """`for` an ISO 8601 duration from now, or `until` an RFC3339 instant."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        json_schema_extra={"examples": [{"for": "PT10M"}]},
    )

    for_: str | None = Field(default=None, alias="for")
    until: str | None = None
    urgent: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> SnoozeIn:
        if (self.for_ is None) == (self.until is None):
            raise ValueError('snooze {"for": "PT10M"} or {"until": "<RFC3339>"}')
        return self

    def target(self, now: datetime) -> datetime:
        if self.until is not None:
            return parse_instant_field("until", self.until)
        assert self.for_ is not None
        try:
            delay = parse_iso_duration(self.for_, anchor=now)
        except ValueError as exc:
            raise ValueError(f'snooze "for": {exc}') from None
        if delay <= timedelta(0) or delay > timedelta(days=366):
            raise ValueError(f'snooze "for": {self.for_!r} must be between 1 second and a year')
        return now + delay


class SeriesOut(BaseModel):
    id: str
    recurrence: str | None
    repeat_after: str | None
    timezone: str | None
    start_local: str
    title: str
    active: bool
    occurrences: list[TaskOut]

    @classmethod
    def of(cls, s: Series, tasks: list[Task], user_zone: str | None = None) -> SeriesOut:
        return cls(
            id=s.id,
            recurrence=s.rule,
            repeat_after=s.repeat_after,
            timezone=s.timezone,
            start_local=s.start_local.isoformat(),
            title=s.title,
            active=s.active,
            occurrences=[TaskOut.of(t, user_zone) for t in tasks],
        )


class OccurrencesOut(BaseModel):
    due_at: list[str]
