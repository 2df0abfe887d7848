"""Scheduling through an outbox: for a scheduler outside the task store's database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from duetime.clock import Clock, SystemClock
from duetime.db.helpers import Transaction, chunks
from duetime.db.tables import schedule_outbox as o_table
from duetime.jobs import Job, JobScheduler, ScheduleError
from duetime.tasks.scheduling import Intent, job_from_intent, latest_per_job
from duetime.tracing import attached

_TRACE_KEY = "traceContext"
"""Where an intent's trace context rides in the outbox's job JSON (absent: none)."""

log = logging.getLogger(__name__)

_RELAY_LOCK = 0x6475_6574_696D_65  # 'duetime': the advisory lock of the outbox relay


class SchedulingRelay:
    """`write` stores intents in the outbox table in the caller's transaction; after commit
    the relay schedules (with overwrite) or deletes each intent's job, then drops the intent.
    When the scheduler fails (a Dapr sidecar that is down), it retries with backoff until it
    takes, so no reminder is lost and no user request waits on the scheduler."""

    def __init__(
        self,
        engine: AsyncEngine,
        scheduler: JobScheduler,
        *,
        batch: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock or SystemClock()
        self._scheduler = scheduler
        self._batch = batch
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def write(self, tx: Transaction, intents: Sequence[Intent]) -> None:
        now_us = self._clock.now_micros()
        values = [
            {"job_name": i.job_name, "job": _job_json(i), "created_us": now_us} for i in intents
        ]
        for chunk in chunks(values):
            await tx.conn.execute(insert(o_table), chunk)
        if values:
            tx.after_commit(self.kick)

    def kick(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duetime-scheduling-relay")
        self.kick()  # intents left from before a restart

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def drain(self) -> None:
        """Carry over every intent waiting now; raises if the scheduler fails."""
        while await self._drain_once():
            pass

    async def pending(self, limit: int) -> list[tuple[int, Intent]]:
        """The oldest intents not yet carried over, with their outbox ids."""
        async with self._engine.connect() as conn:
            return await self._pending(conn, limit)

    async def _run(self) -> None:
        delay = 0.1
        # A shared outbox (PostgreSQL, several replicas) may hold intents a replica committed
        # just before it died: sweep it now and then, not only when this replica writes.
        sweep = 5.0 if self._engine.dialect.name == "postgresql" else None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), sweep)
            self._wakeup.clear()
            try:
                while await self._drain_once():
                    pass
                delay = 0.1
            except Exception as exc:
                log.warning("scheduling failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._wakeup.set()

    async def _drain_once(self) -> bool:
        if self._engine.dialect.name != "postgresql":
            # SQLite: one process owns the database, and its one connection is needed by
            # the scheduler's own writes, so no transaction is held across the carry-over.
            async with self._engine.connect() as conn:
                pending = await self._pending(conn, self._batch)
            await self._carry_over(pending)
            async with self._engine.begin() as conn:
                await self._forget(conn, pending)
            return len(pending) == self._batch
        # Several replicas share the outbox: one drains at a time, holding a transaction
        # lock, so the intents of one job reach the scheduler in the order they were written.
        async with self._engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _RELAY_LOCK})
            pending = await self._pending(conn, self._batch)
            await self._carry_over(pending)
            await self._forget(conn, pending)
        return len(pending) == self._batch

    async def _pending(self, conn: AsyncConnection, limit: int) -> list[tuple[int, Intent]]:
        stmt = select(o_table).order_by(o_table.c.id).limit(limit)
        return [(r.id, _intent(r.job_name, r.job)) for r in await conn.execute(stmt)]

    async def _forget(self, conn: AsyncConnection, pending: list[tuple[int, Intent]]) -> None:
        for ids in chunks([i for i, _ in pending]):
            await conn.execute(delete(o_table).where(o_table.c.id.in_(ids)))

    async def _carry_over(self, pending: list[tuple[int, Intent]]) -> None:
        if not pending:
            return
        latest = latest_per_job([intent for _, intent in pending])
        # one call per trace context (one in all while tracing is off): the scheduler stores
        # each job with the context current when it is scheduled
        by_trace: dict[str | None, list[Job]] = {}
        for i in latest:
            if i.job is not None:
                by_trace.setdefault(i.trace_context, []).append(job_from_intent(i.job_name, i.job))
        for trace_context, puts in by_trace.items():
            with attached(trace_context):
                try:
                    await self._scheduler.schedule_many(puts, overwrite=True)
                except ScheduleError:
                    await self._schedule_each(puts)
        for intent in latest:
            if intent.job is None:
                await self._scheduler.delete(intent.job_name)

    async def _schedule_each(self, jobs: list[Job]) -> None:
        for job in jobs:
            try:
                await self._scheduler.schedule(job, overwrite=True)
            except ScheduleError as exc:  # a bug, not an outage: retrying cannot help
                log.error("dropping unschedulable job %r: %s", job.name, exc)


def _job_json(intent: Intent) -> str | None:
    if intent.job is None:
        return None
    if intent.trace_context is None:
        return json.dumps(intent.job)
    return json.dumps({**intent.job, _TRACE_KEY: intent.trace_context})


def _intent(job_name: str, text: str | None) -> Intent:
    if text is None:
        return Intent(job_name, None)
    job = json.loads(text)
    trace_context = job.pop(_TRACE_KEY, None)
    return Intent(job_name, job, trace_context if isinstance(trace_context, str) else None)
