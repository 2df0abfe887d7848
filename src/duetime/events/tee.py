"""Publishing to a broker and to this process's own subscribers (the live streams)."""

from __future__ import annotations

from collections.abc import Sequence

from duetime.events.embedded import EmbeddedEventPublisher
from duetime.events.model import PublishedEvent
from duetime.events.port import EventPublisher


class TeePublisher:
    """`local` first and once per event, then `broker`, which may fail (the relay retries the
    batch). A live stream so gets its reminder on time while the broker is away, and not
    twice when the batch is retried: `seq` only grows, so the highest one echoed says what
    `local` has had."""

    def __init__(self, broker: EventPublisher, local: EmbeddedEventPublisher) -> None:
        self._broker = broker
        self._local = local
        self._echoed = 0

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        fresh = [e for e in events if e.seq > self._echoed]
        if fresh:
            await self._local.publish(fresh)
            self._echoed = max(e.seq for e in fresh)
        await self._broker.publish(events)

    async def aclose(self) -> None:
        await self._broker.aclose()
        await self._local.aclose()
