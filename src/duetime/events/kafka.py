"""A Kafka backend of the publisher port, without Dapr (aiokafka).

Each event is one record in the topic of its name: the value is the CloudEvent in its
structured JSON form (header `content-type: application/cloudevents+json`), the key is its
subject (`tasks/<id>`), so one task's events share a partition and keep their order. The
producer is idempotent (`enable_idempotence`, `acks=all`): a retry inside the client never
writes a record twice; a relay retry after a crash can (at least once), and consumers dedupe
on the CloudEvent `id`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from duetime.events.model import PublishedEvent

CLOUD_EVENT_HEADERS = [("content-type", b"application/cloudevents+json")]


class KafkaEventPublisher:
    def __init__(
        self, bootstrap_servers: str, *, client_id: str = "duetime", topic_prefix: str = ""
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._prefix = topic_prefix
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=2,
                )
                try:
                    await producer.start()  # raises while the broker is away: the relay retries
                except BaseException:
                    await producer.stop()  # else each retry leaves an unclosed client behind
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        producer = await self._started()
        sent = [
            await producer.send(
                self._prefix + event.topic,
                value=json.dumps(event.body, separators=(",", ":"), ensure_ascii=False).encode(),
                key=str(event.body.get("subject") or event.body["id"]).encode(),
                headers=CLOUD_EVENT_HEADERS,
            )
            for event in events
        ]
        await asyncio.gather(*sent)

    async def aclose(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
