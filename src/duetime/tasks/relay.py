"""Carries scheduling intents from the outbox to the jobs port, at least once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from duetime.jobs import Job, JobScheduler, ScheduleError
from duetime.tasks.store import Intent, SqlTaskStore

log = logging.getLogger(__name__)


def job_from_intent(name: str, payload: dict[str, Any]) -> Job:
    return Job(
        name=name,
        due_time=payload.get("dueTime"),
        schedule=payload.get("schedule"),
        data=payload.get("data"),
    )


class SchedulingRelay:
    """Drains the outbox: schedules (with overwrite) or deletes each intent's job, then drops
    the intent. Woken by `kick()` after every commit that enqueued something; when the
    scheduler fails (a Dapr sidecar that is down), retries with backoff until it takes, so no
    reminder is lost and no user request waits on the scheduler."""

    def __init__(self, store: SqlTaskStore, scheduler: JobScheduler, *, batch: int = 1000) -> None:
        self._store = store
        self._scheduler = scheduler
        self._batch = batch
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duetime-scheduling-relay")
        self.kick()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.1
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                while await self._drain_once():
                    pass
                delay = 0.1
            except Exception as exc:
                log.warning("scheduling failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                self._wakeup.set()

    async def _drain_once(self) -> bool:
        pending = await self._store.pending_intents(self._batch)
        if not pending:
            return False
        latest: dict[str, Intent] = {}
        for _, intent in pending:
            latest.pop(intent.job_name, None)
            latest[intent.job_name] = intent  # the last intent per job wins
        puts = [job_from_intent(name, i.job) for name, i in latest.items() if i.job is not None]
        if puts:
            try:
                await self._scheduler.schedule_many(puts, overwrite=True)
            except ScheduleError:
                await self._schedule_each(puts)
        for name, intent in latest.items():
            if intent.job is None:
                await self._scheduler.delete(name)
        await self._store.drop_intents([i for i, _ in pending])
        return len(pending) == self._batch

    async def _schedule_each(self, jobs: list[Job]) -> None:
        for job in jobs:
            try:
                await self._scheduler.schedule(job, overwrite=True)
            except ScheduleError as exc:  # a bug, not an outage: retrying cannot help
                log.error("dropping unschedulable job %r: %s", job.name, exc)
