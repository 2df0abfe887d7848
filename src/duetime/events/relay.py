"""Carries events from the outbox to the publisher, at least once, in log order."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime import metrics
from duetime.clock import Clock
from duetime.events.model import PublishedEvent
from duetime.events.port import EventPublisher
from duetime.events.store import SqlEventStore

log = logging.getLogger(__name__)

_RELAY_LOCK = 0x6475_6574_6576_74  # 'duetevt': the advisory lock of the event relay


class EventRelay:
    """Woken by `kick()` after every commit that wrote events, and once at start (events
    committed before a crash are published then). A failing publisher is retried with
    backoff; nothing is dropped.

    Several processes may share the outbox (API and worker roles, replicas): one drains at
    a time (`relay_lock`), so an event is published once, not once per process. `sweep`
    seconds: also drain now and then, for events a process that died had committed."""

    def __init__(
        self,
        store: SqlEventStore,
        publisher: EventPublisher,
        clock: Clock,
        *,
        engine: AsyncEngine | None = None,
        batch: int = 500,
        sweep: float | None = None,
        to_broker: bool = False,
    ) -> None:
        self._store = store
        self._to_broker = to_broker  # counted as the `pubsub` channel's deliveries
        self._publisher = publisher
        self._clock = clock
        self._engine = engine
        self._batch = batch
        self._sweep = sweep
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duetime-event-relay")
        self.kick()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drain(self) -> int:
        """Publish everything pending now; returns how many events."""
        total = 0
        async with relay_lock(self._engine):
            while True:
                events = await self._store.sequence_pending(self._batch)
                if not events:
                    return total
                await self._publish(events)
                await self._store.mark_published([e.seq for e in events], self._clock.now_micros())
                total += len(events)

    async def _publish(self, events: list[PublishedEvent]) -> None:
        if not self._to_broker:
            await self._publisher.publish(events)
            return
        started = time.perf_counter()
        try:
            await self._publisher.publish(events)
        except Exception:
            metrics.deliveries.labels("pubsub", "retry").inc(len(events))
            raise
        metrics.deliveries.labels("pubsub", "success").inc(len(events))
        metrics.delivery_duration.labels("pubsub").observe(time.perf_counter() - started)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._sweep)
            self._wakeup.clear()
            try:
                await self.drain()
                delay = 0.1
            except Exception as exc:
                log.warning("publishing events failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                self._wakeup.set()


@contextlib.asynccontextmanager
async def relay_lock(engine: AsyncEngine | None) -> AsyncIterator[None]:
    """Held by one process at a time: a PostgreSQL advisory lock (released if the holder
    dies with its connection), or for a SQLite file a `flock` on `<file>.relay-lock`."""
    if engine is None:
        yield
        return
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _RELAY_LOCK})
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _RELAY_LOCK})
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with Path(f"{database}.relay-lock").open("a") as handle:  # noqa: ASYNC230 (a local file)
        while True:  # polled, not a blocking call in a thread: cancellation stays clean
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
