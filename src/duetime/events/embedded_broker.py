"""The embedded-broker backend of the publisher port: duetime's own events (`task-events`,
`reminders`) into the embedded Dapr pub/sub (`duetime.sidecar.pubsub`), so an app
subscribes to them as it would through daprd.

Each event goes in as the Dapr publisher sends it to daprd (`events/dapr.py`: the
CloudEvent as `application/cloudevents+json`), completed as daprd completes it (`topic`,
`pubsubname`, trace attributes), so a subscriber sees the same envelope on both. The events
of one topic in a batch are stored in one transaction; a failure raises and the relay
retries the batch (a topic stored before the failure is then stored again: at least once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from duetime.events.model import PublishedEvent


class _Broker(Protocol):
    async def publish_cloud_events(
        self, pubsub: str, topic: str, events: Sequence[dict[str, Any]]
    ) -> None: ...


class EmbeddedBrokerPublisher:
    def __init__(self, broker: _Broker, *, pubsub: str) -> None:
        self._broker = broker
        self._pubsub = pubsub

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_topic.setdefault(event.topic, []).append(event.body)
        for topic, bodies in by_topic.items():
            await self._broker.publish_cloud_events(self._pubsub, topic, bodies)

    async def aclose(self) -> None:
        """The broker is closed with the runtime."""
