"""The jobs port: the one interface the rest of duetime schedules through.

Backends: `EmbeddedJobScheduler` (SQL database + in-process loop, the default),
`InMemoryJobScheduler` (duetime.testing) and `DaprJobScheduler` (a Dapr sidecar). One contract
suite (tests/contract) holds every backend to the docstrings below.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

from duetime.jobs.model import Answer, DeadLetter, Job, JobState, Trigger

TriggerHandler = Callable[[Trigger], Awaitable[Answer | None]]
"""Receives one trigger. Returning is success; raising is a failure for the job's policy.
An app channel returns `Answer.APP_NOT_FOUND` for a 404 it takes as delivered, which the
engine counts on the job; other handlers return None.

Delivery is at least once: the same trigger (same name and `scheduled_at`) can arrive
again after a crash, so handlers must be idempotent.
"""


class JobScheduler(ABC):
    """Durable exact-time jobs.

    Contract shared by every backend:

    * Validation follows Dapr: `schedule` is a 6-field cron (seconds first), `@every <Go
      duration>` or `@yearly`…`@hourly`, optionally prefixed `CRON_TZ=<IANA> `/`TZ=`;
      `due_time` and `ttl` are RFC3339, Go or ISO 8601 durations. Invalid jobs raise
      `ScheduleError` (a `ValueError`) with a message saying what is wrong, and store nothing.
    * First fire: `due_time` only → once at due time; `schedule` + `due_time` → at due time,
      then per schedule; `schedule` only → the first tick after scheduling.
    * Never early: a handler never starts before its trigger's `scheduled_at`.
    * At least once: a trigger is delivered until its handler returns or its failure policy
      runs out; then it is kept as a dead letter (Dapr drops it).
    * A job never runs concurrently with itself; ticks missed while it ran or while the
      engine was down are coalesced into one trigger.
    * One-shot jobs are deleted after success or exhausted retries; `repeats` and `ttl` end
      recurring jobs.
    * A trigger whose handler returns `Answer.APP_NOT_FOUND` is delivered, and counted on
      the job (`JobState.app_not_found`, the last at `app_not_found_at`; reset by overwrite).
    """

    # -- lifecycle -------------------------------------------------------------------------
    @abstractmethod
    async def start(self) -> None:
        """Begin firing due jobs. Jobs that came due while stopped fire now, marked late."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop firing; waits for handlers that are running. Pending jobs stay stored."""

    @property
    @abstractmethod
    def ready(self) -> bool:
        """True between a successful `start` and `stop`."""

    # -- jobs ------------------------------------------------------------------------------
    @abstractmethod
    async def schedule(self, job: Job, *, overwrite: bool = False) -> JobState:
        """Store `job` durably and arm it; returns its state (with the first fire time).

        Raises `JobExistsError` if the name is taken and `overwrite` is false. With
        `overwrite`, the old job is replaced whole (counters reset) and a trigger of the old
        job that is running is not retried.
        """

    @abstractmethod
    async def schedule_many(self, jobs: Sequence[Job], *, overwrite: bool = False) -> None:
        """Store many jobs in one transaction: all are validated first; all or none stored.

        Raises `JobExistsError` for the first taken name when `overwrite` is false, and
        `ValueError` if `jobs` names a job twice.
        """

    @abstractmethod
    async def get(self, name: str) -> JobState | None:
        """The stored job, or None."""

    @abstractmethod
    async def delete(self, name: str) -> bool:
        """Delete the job; True if it existed. A trigger already running finishes."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Delete every job whose name starts with `prefix`; returns how many."""

    @abstractmethod
    async def list_jobs(
        self, prefix: str = "", *, limit: int = 100, after: str = ""
    ) -> list[JobState]:
        """Jobs whose name starts with `prefix`, ordered by name, names > `after`."""

    # -- dead letters ----------------------------------------------------------------------
    @abstractmethod
    async def dead_letters(
        self, prefix: str = "", *, limit: int = 100, after: str = ""
    ) -> list[DeadLetter]:
        """Dead letters of jobs whose name starts with `prefix`, oldest first, ids > `after`."""

    @abstractmethod
    async def dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        """The dead letter with this id, or None."""

    @abstractmethod
    async def replay(self, dead_letter_id: str) -> None:
        """Deliver a dead letter's trigger once, now. On success it is removed; on failure
        it stays (with the new error and attempt count) and the handler's error is raised.
        Raises `JobNotFoundError` for an unknown id."""

    @abstractmethod
    async def discard(self, dead_letter_id: str) -> bool:
        """Delete a dead letter; True if it existed."""

    # -- handlers --------------------------------------------------------------------------
    @abstractmethod
    def add_handler(self, prefix: str, handler: TriggerHandler) -> None:
        """Route triggers of jobs whose name starts with `prefix` to `handler`.

        The longest matching prefix wins; `""` is the fallback. A trigger no handler matches
        counts as delivered (as Dapr treats an app's 404) and is logged.
        """
