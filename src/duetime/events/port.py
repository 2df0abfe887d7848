"""The event publisher port."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from duetime.events.model import PublishedEvent


class EventPublisher(Protocol):
    """Carries events out of the process (or to in-process subscribers).

    Contract: `publish` is called by the relay with events in log order, after the
    transaction that wrote them committed; it may be called again with the same events
    (at least once: a crash between publishing and recording it), so subscribers dedupe on
    the CloudEvent `id` or the `seq`. It returns once every event is accepted by the
    backend and raises on any failure, in which case the relay retries the whole batch.
    """

    async def publish(self, events: Sequence[PublishedEvent]) -> None: ...

    async def aclose(self) -> None: ...
