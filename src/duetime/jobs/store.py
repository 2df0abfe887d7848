"""The storage port of the embedded engine, and the rows it stores.

Times are integer microseconds since the Unix epoch (UTC): exact, ordered, and the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from duetime.jobs.model import DeadLetter, Job, JobExistsError, JobState
from duetime.timefmt import from_micros


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A job and its firing state. `generation` changes whenever the job is (re)created, so
    the outcome of a trigger of a replaced job is not applied to its successor. `anchor_us`
    is the first fire time: `@every` ticks stay on its grid. `app_not_found` counts the
    triggers the app answered 404, the last at `app_not_found_us`. `trace_context` is the
    trace context the job was scheduled in (`duetime.tracing.current`), which its triggers'
    spans link to."""

    job: Job
    created_us: int
    anchor_us: int
    next_fire_us: int
    tick_us: int
    attempt: int
    fired: int
    expires_us: int | None
    generation: int
    app_not_found: int = 0
    app_not_found_us: int | None = None
    trace_context: str | None = None

    @property
    def key(self) -> tuple[int, str]:
        return (self.next_fire_us, self.job.name)

    def state(self) -> JobState:
        return JobState(
            job=self.job,
            created_at=from_micros(self.created_us),
            next_fire_at=from_micros(self.next_fire_us),
            tick_at=from_micros(self.tick_us),
            attempt=self.attempt,
            fired=self.fired,
            expires_at=None if self.expires_us is None else from_micros(self.expires_us),
            app_not_found=self.app_not_found,
            app_not_found_at=(
                None if self.app_not_found_us is None else from_micros(self.app_not_found_us)
            ),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a finished attempt changes: the job's next state (None: the job is done and is
    deleted) and possibly a dead letter. Applied only if the stored job still has
    `generation`; the dead letter is kept either way."""

    name: str
    generation: int
    update: StoredJob | None
    dead_letter: DeadLetter | None = None


class JobStore(ABC):
    """Durable storage for the embedded engine. Every write is committed before it returns."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def insert(self, rows: Sequence[StoredJob], *, overwrite: bool) -> None:
        """Store rows in one transaction. Raises `JobExistsError` (storing none) if a name is
        taken and not `overwrite`."""

    async def insert_each(self, items: Sequence[tuple[StoredJob, bool]]) -> list[bool | Exception]:
        """Store each `(row, overwrite)` in order: for each, True when stored, False when its
        name was taken and `overwrite` false (that row stores nothing; the others still do),
        or the exception that row alone failed with. The group commit of concurrent
        `schedule` calls: a store that can commits them in one transaction (and raises for
        all when it fails); this default stores them one by one."""
        stored: list[bool | Exception] = []
        for row, overwrite in items:
            try:
                await self.insert([row], overwrite=overwrite)
            except JobExistsError:
                stored.append(False)
            except Exception as exc:  # this row's alone: the rows before it are stored
                stored.append(exc)
            else:
                stored.append(True)
        return stored

    @abstractmethod
    async def get(self, name: str) -> StoredJob | None: ...

    @abstractmethod
    async def delete(self, name: str) -> bool: ...

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int: ...

    @abstractmethod
    async def list_jobs(self, prefix: str, *, limit: int, after: str) -> list[StoredJob]:
        """By name, names > `after`."""

    @abstractmethod
    async def earliest(
        self, limit: int, *, after: tuple[int, str] | None = None
    ) -> list[StoredJob]:
        """The `limit` jobs with the smallest key `(next_fire_us, name)` above `after`."""

    @abstractmethod
    async def apply(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply outcomes in one transaction; for each, whether its job update applied."""

    @abstractmethod
    async def dead_letters(self, prefix: str, *, limit: int, after: str) -> list[DeadLetter]:
        """By id (oldest first), ids > `after`."""

    @abstractmethod
    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter | None: ...

    @abstractmethod
    async def put_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Insert or replace."""

    @abstractmethod
    async def delete_dead_letter(self, dead_letter_id: str) -> bool: ...
