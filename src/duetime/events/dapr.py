"""The Dapr backend of the publisher port: `POST /v1.0/publish/{pubsub}/{topic}` on the
sidecar, one event per call, in log order.

Events go as structured CloudEvents (`application/cloudevents+json`), so daprd keeps
duetime's `id`, `source`, `type` and `subject` and only adds its own attributes (`topic`,
`pubsubname`, `traceparent`). A subscriber that dedupes on the id therefore sees the id the
event log and the webhooks carry.

One call at a time keeps each topic's order as the outbox has it (Redis streams and a Kafka
partition keep the order they are given). The bulk API (`/v1.0-alpha1/publish/bulk`) is
not used: for Redis daprd fans a bulk request out concurrently, which loses that order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote

import httpx

from duetime.events.model import PublishedEvent

CLOUD_EVENT_JSON = "application/cloudevents+json"


class PublishFailed(Exception):
    """The sidecar did not take an event; the relay retries the batch."""


class DaprEventPublisher:
    def __init__(
        self, url: str, *, pubsub: str, token: str | None = None, timeout: float = 10.0
    ) -> None:
        headers = {"content-type": CLOUD_EVENT_JSON}
        if token:
            headers["dapr-api-token"] = token
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._pubsub = quote(pubsub, safe="")

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        for event in events:
            path = f"/v1.0/publish/{self._pubsub}/{quote(event.topic, safe='')}"
            body = json.dumps(event.body, separators=(",", ":"), ensure_ascii=False)
            try:
                answer = await self._client.post(path, content=body.encode())
            except httpx.HTTPError as exc:
                raise PublishFailed(f"daprd unreachable: {exc!r}") from exc
            if answer.status_code != 204:
                raise PublishFailed(
                    f"daprd answered {answer.status_code} to a publish on {event.topic!r}: "
                    f"{answer.text[:300]}"
                )

    async def aclose(self) -> None:
        await self._client.aclose()
