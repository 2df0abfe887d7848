"""The embedded backend of the publisher port: an in-process bus. The persisted log that
`GET /api/events` reads is the outbox table itself, in `seq` order."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from duetime.events.model import PublishedEvent

log = logging.getLogger(__name__)

Subscriber = Callable[[PublishedEvent], None]


class EmbeddedEventPublisher:
    """Hands each event to every subscriber, synchronously and in order. Subscribers must
    not block (queue the event and return); one that raises is logged and skipped, so it
    cannot hold back the others."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        for event in events:
            for subscriber in self._subscribers:
                try:
                    subscriber(event)
                except Exception:
                    log.exception("event subscriber failed on %s", event.body.get("id"))

    async def aclose(self) -> None:
        self._subscribers.clear()
