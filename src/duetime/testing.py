"""Test doubles that ship with duetime: real behaviour, recorded state, no network."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from duetime.clock import Clock
from duetime.delivery.model import Claimed, Outcome
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.memory_store import MemoryJobStore
from duetime.jobs.model import Answer, Trigger
from duetime.jobs.port import JobScheduler
from duetime.sidecar.apps import AppDirectory
from duetime.sidecar.jobs import SidecarJobs
from duetime.timefmt import to_micros


class InMemoryJobScheduler(EmbeddedJobScheduler):
    """The embedded engine over a `MemoryJobStore`: same timing and semantics, nothing on
    disk, nothing survives `stop()`... except in the store object itself."""

    def __init__(self, *, clock: Clock | None = None, max_concurrency: int = 100) -> None:
        super().__init__(MemoryJobStore(), clock=clock, max_concurrency=max_concurrency)


class RecordingHandler:
    """A trigger handler that records every trigger it receives.

    `fail` decides per trigger whether to raise (default: never); otherwise it returns
    `answer` (`Answer.APP_NOT_FOUND` plays an app channel whose app answered 404).
    """

    def __init__(
        self, fail: Callable[[Trigger], bool] | None = None, *, answer: Answer | None = None
    ) -> None:
        self.triggers: list[Trigger] = []
        self.received_at: list[datetime] = []  # the wall clock on entry, not the engine's
        self._fail = fail
        self._answer = answer
        self._changed = asyncio.Condition()

    async def __call__(self, trigger: Trigger) -> Answer | None:
        async with self._changed:
            self.received_at.append(datetime.now(UTC))
            self.triggers.append(trigger)
            self._changed.notify_all()
        if self._fail is not None and self._fail(trigger):
            raise RuntimeError(f"handler refused {trigger.name} attempt {trigger.attempt}")
        return self._answer

    def names(self) -> list[str]:
        return [t.name for t in self.triggers]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Trigger]:
        """Wait until at least `count` triggers arrived; raises TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.triggers) >= count)
        return list(self.triggers)

    def never_early(self) -> bool:
        """Every trigger reached the handler at or after its scheduled time."""
        return all(
            at >= t.scheduled_at for t, at in zip(self.triggers, self.received_at, strict=True)
        )


class ManualClock:
    """A clock that stands still until moved: `set` and `advance`. Aware UTC."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def now_micros(self) -> int:
        return to_micros(self._now)

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, by: timedelta) -> None:
        self._now += by


class RecordingChannel:
    """A delivery channel (the `Channel` port) that records each attempt it is given and
    answers with `outcomes` in turn (then the last one again); default: delivered."""

    def __init__(self, outcomes: list[Outcome] | None = None) -> None:
        self.sent: list[Claimed] = []
        self._outcomes = outcomes or [Outcome(True)]
        self._changed = asyncio.Condition()

    async def send(self, claimed: Claimed) -> Outcome:
        async with self._changed:
            self.sent.append(claimed)
            self._changed.notify_all()
        return self._outcomes[min(len(self.sent), len(self._outcomes)) - 1]

    async def aclose(self) -> None:
        return None

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Claimed]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)
        return list(self.sent)


def serve_jobs(app: Any, scheduler: JobScheduler, apps: AppDirectory | None = None) -> None:
    """Give a bare FastAPI `app` (with `duetime.api.jobs.jobs_router` included) the state the
    Jobs routes read: the scheduler, one default app (`app`) unless `apps` says otherwise."""
    app.state.scheduler = scheduler
    app.state.apps = apps or AppDirectory.single()
    app.state.jobs = SidecarJobs(scheduler)
