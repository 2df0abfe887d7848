"""Job planning: Dapr's checks on a job's timing fields, its first fire, and what follows a tick.

Pure functions of `now`; no I/O. All datetimes are aware UTC. The rules mirror Dapr v1.18.3
(daprd `pkg/api/universal/jobs.go`, go-etcd-cron v0.12.7 `internal/scheduler/builder.go`,
`repeats.go` and `internal/counter/counter.go`); the deliberate differences are listed on
`plan_job` and `next_tick`.

`plan_job` is deterministic in `(job, now)`: an engine that stores a job and its creation
time can rebuild the same `Plan` later by calling it again with `now=created_at`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from duetime import timefmt
from duetime.jobs.cron import EverySchedule, Schedule, ScheduleError, parse_schedule
from duetime.jobs.model import FailurePolicy, Job

__all__ = [
    "MAX_NAME_BYTES",
    "Plan",
    "Schedule",
    "ScheduleEmptyError",
    "ScheduleError",
    "ends",
    "next_tick",
    "parse_schedule",
    "plan_job",
    "validate_name",
]

MAX_NAME_BYTES = 400
"""Longest job name, in UTF-8 bytes.

Dapr bounds its whole key, `app||<namespace>||<app-id>||<name>`, at 512 bytes; 400 leaves
room for a namespace and app id of up to 103 bytes together, so every accepted name also fits
when the job is forwarded to a real Dapr scheduler."""

_MAX_UINT32 = 2**32 - 1  # repeats and maxRetries are uint32 on Dapr's wire
_FORBIDDEN_NAME_CHARS = "/\\#?"


class ScheduleEmptyError(ScheduleError):
    """The job has neither a schedule nor a dueTime (Dapr's DAPR_SCHEDULER_SCHEDULE_EMPTY)."""


@dataclass(frozen=True)
class Plan:
    """When a job first fires, when it expires, and how it recurs.

    `schedule` is None for a one-shot job. `expires_at` is the instant the ttl ends; a tick
    exactly at it still fires. `repeats` is the job's limit on delivered triggers, if any.
    """

    first_fire_at: datetime
    expires_at: datetime | None
    schedule: Schedule | None
    repeats: int | None = None


def _quote(text: str, limit: int = 80) -> str:
    return json.dumps(text if len(text) <= limit else text[:limit] + "…", ensure_ascii=False)


# Printable ASCII without / \ # ?, and not "." or "..": valid without further checks.
_PLAIN_NAME = re.compile(r"(?!\.{1,2}\Z)[\x20-\x22\x24-\x2e\x30-\x3e\x40-\x5b\x5d-\x7e]+")


def validate_name(name: str) -> None:
    """Raise `ScheduleError` (field `name`) unless Dapr v1.18.3 accepts `name` as a job name.

    go-etcd-cron v0.12.7 (`internal/api/validator/validator.go`) rejects an empty name, any
    of `/ \\ # ?`, control characters (Unicode category Cc: C0, DEL and C1), and a key of more
    than 512 bytes; daprd rejects an empty name first. Letters of any script, spaces, `.`,
    `_`, `-`, `:`, `@`, `|` and `||` are all accepted. Two deliberate additions: the names
    `.` and `..` are rejected (they cannot be a URL path segment), and the length bound is
    `MAX_NAME_BYTES` for the name alone.

    This is the engine's rule, which its scoped keys (`app||<namespace>||<app-id>||<name>`,
    `duetime||<name>`) satisfy; a public job name is first held to daprd 1.16.5's stricter
    rule (`duetime.jobs.names.check_job_name`).
    """

    def bad(reason: str) -> ScheduleError:
        return ScheduleError(f"name {_quote(name)}: {reason}", field="name")

    if _PLAIN_NAME.fullmatch(name) and len(name) <= MAX_NAME_BYTES:
        return  # the common case, decided by one regex: printable ASCII, none forbidden
    if not name:
        raise bad("must not be empty")
    forbidden = sorted({char for char in name if char in _FORBIDDEN_NAME_CHARS})
    if forbidden:
        raise bad(f"must not contain / \\ # or ? (found {' '.join(forbidden)})")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise bad("must not contain control characters such as newlines or NUL")
    if name in (".", ".."):
        raise bad('must not be "." or ".."')
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise bad(f"must be at most {MAX_NAME_BYTES} bytes of UTF-8, got {size}")


def plan_job(job: Job, now: datetime) -> Plan:
    """Check a job's fields the way Dapr does and work out its first fire time.

    Checks, in Dapr's order, each raising `ScheduleError` whose message names the field:
    the name (`validate_name`); neither schedule nor dueTime (`ScheduleEmptyError`); repeats
    above 1 without a schedule; repeats below 1; ttl without a schedule; the schedule
    expression; dueTime; ttl (a relative ttl counts from dueTime when set, else from `now`);
    a ttl ending before dueTime (ending exactly at it is allowed); the failure policy.

    A dueTime in the past is allowed: the job is due at once. First fire: dueTime when set
    (with or without a schedule), else the schedule's first tick after `now`; for `@every d`
    that is `now + d`.

    Deliberate differences from Dapr: a negative constant retry interval is rejected (Dapr
    retries at once); repeats and maxRetries above 2**32-1, which Dapr's wire cannot carry,
    are rejected; a schedule-only job whose ttl ends before its first tick is rejected
    (Dapr accepts it and silently deletes it).
    """
    now = _utc(now)
    if not job.name:  # daprd checks this before the schedule; the scheduler checks the rest
        validate_name(job.name)
    if job.schedule is None and job.due_time is None:
        raise ScheduleEmptyError(
            "schedule: a job needs a schedule, a dueTime or both", field="schedule"
        )
    validate_name(job.name)
    if job.schedule is None and job.repeats is not None and job.repeats > 1:
        raise ScheduleError(
            f"repeats {job.repeats}: needs a schedule; a job with only a dueTime fires once",
            field="repeats",
        )
    if job.repeats is not None and not 1 <= job.repeats <= _MAX_UINT32:
        raise ScheduleError(
            f"repeats {job.repeats}: must be at least 1 and at most {_MAX_UINT32}",
            field="repeats",
        )
    if job.schedule is None and job.ttl is not None:
        raise ScheduleError(
            f"ttl {_quote(job.ttl)}: needs a schedule; a job with only a dueTime fires once",
            field="ttl",
        )
    schedule = parse_schedule(job.schedule) if job.schedule is not None else None
    due = _instant("dueTime", job.due_time, now) if job.due_time is not None else None
    expires = _instant("ttl", job.ttl, due or now) if job.ttl is not None else None
    if due is not None and expires is not None and due > expires:
        raise ScheduleError(
            f"ttl {_quote(job.ttl or '')}: ends at {timefmt.format_rfc3339(expires)}, "
            f"before the dueTime {timefmt.format_rfc3339(due)}",
            field="ttl",
        )
    _check_failure_policy(job.failure_policy)
    first = due
    if first is None:
        assert schedule is not None
        first = schedule.next_after(now)
        if first is None:
            raise ScheduleError(
                f"schedule {_quote(schedule.expression)}: never fires after "
                f"{timefmt.format_rfc3339(now)}",
                field="schedule",
            )
        if expires is not None and first > expires:
            raise ScheduleError(
                f"ttl {_quote(job.ttl or '')}: ends at {timefmt.format_rfc3339(expires)}, "
                f"before the schedule's first tick at {timefmt.format_rfc3339(first)}",
                field="ttl",
            )
    return Plan(first, expires, schedule, job.repeats)


def _instant(field: str, text: str, now: datetime) -> datetime:
    try:
        return timefmt.parse_instant(text, now=now)
    except ValueError as exc:
        raise ScheduleError(f"{field}: {exc}", field=field) from None


def _check_failure_policy(policy: FailurePolicy | None) -> None:
    if policy is None or policy.kind == "drop":
        return
    if policy.kind != "constant":
        raise ScheduleError(
            f"failurePolicy {_quote(str(policy.kind))}: expected drop or constant",
            field="failurePolicy",
        )
    if policy.interval < timedelta(0):
        raise ScheduleError(
            f"failurePolicy.constant.interval {timefmt.format_go_duration(policy.interval)}: "
            "must not be negative",
            field="failurePolicy",
        )
    retries = policy.max_retries
    if retries is not None and not 0 <= retries <= _MAX_UINT32:
        raise ScheduleError(
            f"failurePolicy.constant.maxRetries {retries}: must be at least 0 and at most "
            f"{_MAX_UINT32} (leave it out to retry forever)",
            field="failurePolicy",
        )


def next_tick(plan: Plan, *, last_tick: datetime, now: datetime, fired: int) -> datetime | None:
    """The tick that follows a delivered one, or None when the job has ended.

    `last_tick` is the scheduled time of the trigger just delivered (or given up on), `now`
    the current time, and `fired` the number of triggers delivered so far, that one included.

    Missed ticks are coalesced, unlike Dapr (which fires every missed tick back to back): the
    result is the first tick strictly after `max(last_tick, now)`. A cron schedule finds it
    with `next_after`. `@every d` stays on the grid anchored at the first fire: the result
    is the smallest `plan.first_fire_at + k*d` after `max(last_tick, now)`, as Dapr counts
    each tick from the previous scheduled one.

    The job ends (None) when `fired >= repeats`, when it has no schedule, when the schedule
    has no later tick, or when that tick is after `expires_at` (see `ends`).
    """
    if plan.schedule is None:
        return None
    since = max(_utc(last_tick), _utc(now))
    schedule = plan.schedule
    if isinstance(schedule, EverySchedule):
        steps = (since - plan.first_fire_at) // schedule.interval + 1
        try:
            tick: datetime | None = plan.first_fire_at + steps * schedule.interval
        except OverflowError:
            tick = None
    else:
        tick = schedule.next_after(since)
    return None if ends(plan, tick=tick, fired=fired) else tick


def ends(plan: Plan, *, tick: datetime | None, fired: int) -> bool:
    """True when a job that has delivered `fired` triggers does not fire at `tick`.

    That is when `fired >= plan.repeats`, `tick` is None, or `tick` is after
    `plan.expires_at`. A tick exactly at `expires_at` still fires: go-etcd-cron ends a job
    only when its next tick is strictly after the expiration (`next.After(exp)`).
    """
    if plan.repeats is not None and fired >= plan.repeats:
        return True
    if tick is None:
        return True
    return plan.expires_at is not None and tick > plan.expires_at


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)
