"""Carries events from the outbox to the publisher, at least once, in log order."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from duetime.clock import Clock
from duetime.events.port import EventPublisher
from duetime.events.store import SqlEventStore

log = logging.getLogger(__name__)


class EventRelay:
    """Woken by `kick()` after every commit that wrote events, and once at start (events
    committed before a crash are published then). A failing publisher is retried with
    backoff; nothing is dropped."""

    def __init__(
        self, store: SqlEventStore, publisher: EventPublisher, clock: Clock, *, batch: int = 500
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._batch = batch
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
        while True:
            events = await self._store.sequence_pending(self._batch)
            if not events:
                return total
            await self._publisher.publish(events)
            await self._store.mark_published([e.seq for e in events], self._clock.now_micros())
            total += len(events)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.drain()
                delay = 0.1
            except Exception as exc:
                log.warning("publishing events failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                self._wakeup.set()
