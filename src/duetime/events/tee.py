"""Publishing to a broker and to this process's own subscribers (the live streams)."""

from __future__ import annotations

from collections.abc import Sequence

from duetime.events.embedded import EmbeddedEventPublisher
from duetime.events.model import PublishedEvent
from duetime.events.port import EventPublisher


class TeePublisher:
    """`broker` first (it may fail, and the relay retries the batch), then `local`, which
    cannot fail; a retried batch reaches the local subscribers again, as the port allows."""

    def __init__(self, broker: EventPublisher, local: EmbeddedEventPublisher) -> None:
        self._broker = broker
        self._local = local

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        await self._broker.publish(events)
        await self._local.publish(events)

    async def aclose(self) -> None:
        await self._broker.aclose()
        await self._local.aclose()
