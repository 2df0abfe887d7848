"""Value types of the jobs engine, shaped exactly like Dapr's job model.

All datetimes are aware UTC. Wire strings (`schedule`, `due_time`, `ttl`) are kept as the
caller sent them, because Dapr echoes them back on GET.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal

JSON = Any  # any JSON value: dict, list, str, int, float, bool or None


class JobExistsError(Exception):
    """A job with this name exists and `overwrite` was not set."""

    def __init__(self, name: str) -> None:
        super().__init__(f"job {name!r} already exists; set overwrite to replace it")
        self.name = name


class JobNotFoundError(LookupError):
    """No job (or dead letter) with this name or id."""


@dataclass(frozen=True)
class FailurePolicy:
    """What happens when a trigger's handler fails.

    `drop`: no retry. `constant`: retry every `interval`, at most `max_retries` times
    (`None` retries forever). Dapr's default, used when a job names none: constant, 1 s, 3.
    """

    kind: Literal["drop", "constant"]
    interval: timedelta = timedelta(seconds=1)
    max_retries: int | None = 3

    @classmethod
    def default(cls) -> FailurePolicy:
        return cls("constant", timedelta(seconds=1), 3)

    @classmethod
    def drop(cls) -> FailurePolicy:
        return cls("drop", timedelta(0), 0)

    def retry_allowed(self, failed_attempts: int) -> bool:
        """True when another attempt may follow `failed_attempts` failures."""
        if self.kind == "drop":
            return False
        return self.max_retries is None or failed_attempts <= self.max_retries


@dataclass(frozen=True)
class Job:
    """A job as the caller states it (Dapr's `Job` message).

    At least one of `schedule` and `due_time` is set. `data` is any JSON value, delivered
    as is. `failure_policy=None` means the default policy.
    """

    name: str
    schedule: str | None = None
    due_time: str | None = None
    repeats: int | None = None
    ttl: str | None = None
    data: JSON = None
    failure_policy: FailurePolicy | None = None


@dataclass(frozen=True)
class JobState:
    """A stored job with what the engine knows about it.

    `next_fire_at` is when the engine next acts on the job (a first attempt or a retry);
    `tick_at` is the scheduled time of the trigger it will deliver then. `fired` counts the
    triggers delivered (or given up on) so far; `app_not_found` those of them the app
    answered 404 (`Answer.APP_NOT_FOUND`), the last at `app_not_found_at`.
    """

    job: Job
    created_at: datetime
    next_fire_at: datetime
    tick_at: datetime
    attempt: int = 0
    fired: int = 0
    expires_at: datetime | None = None
    app_not_found: int = 0
    app_not_found_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """One delivery of a job to its handler.

    `scheduled_at` is the tick this trigger is for; `late` is true when the tick came due
    while the engine was not running (it fires at start-up instead). `attempt` starts at 1.
    """

    name: str
    data: JSON
    scheduled_at: datetime
    fired_at: datetime
    attempt: int = 1
    late: bool = False

    @property
    def lateness(self) -> timedelta:
        return self.fired_at - self.scheduled_at


class Answer(Enum):
    """How a trigger that did not fail ended: what a `TriggerHandler` may return (None is
    `DELIVERED`), and `NO_HANDLER` when no handler owns the job's name."""

    DELIVERED = "delivered"
    APP_NOT_FOUND = "app-not-found"
    """The app answered 404 (gRPC NOT_FOUND) and `DUETIME_APP_404=success` takes that as
    delivered: counted on the job."""
    NO_HANDLER = "no-handler"


@dataclass(frozen=True)
class DeadLetter:
    """A trigger whose failure policy ran out; kept until replayed or deleted."""

    id: str
    name: str
    data: JSON
    scheduled_at: datetime
    failed_at: datetime
    attempts: int
    error: str
    extra: dict[str, Any] = field(default_factory=dict)
