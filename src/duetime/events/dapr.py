"""The Dapr backend of the publisher port: `POST /v1.0/publish/{pubsub}/{topic}` on the
sidecar, one event per call.

Events go as structured CloudEvents (`application/cloudevents+json`), so daprd keeps
duetime's `id`, `source`, `type` and `subject` and only adds its own attributes (`topic`,
`pubsubname`, `traceparent`). A subscriber that dedupes on the id therefore sees the id the
event log and the webhooks carry.

Order is kept per subject (one task's events reach the broker in the order the outbox has
them, each after daprd took the one before); different subjects are published concurrently,
up to `concurrency` calls at once. One call at a time capped the relay at 69–179 events/s on
Redis and 98–137/s on Kafka on a loaded 2-core machine (bench/pubsub_e2e.py). The bulk API
(`/v1.0-alpha1/publish/bulk`) is not used: for Redis daprd fans a bulk request out
concurrently, which loses even the per-subject order.

The calls go through duetime's small HTTP/1.1 client (`delivery/http1.py`): httpx costs
about 0.55 ms of CPU per publish here, that client about 0.02 ms.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from duetime.delivery.http1 import Http1Client, HttpError
from duetime.events.model import PublishedEvent

CLOUD_EVENT_JSON = "application/cloudevents+json"


class PublishFailed(Exception):
    """The sidecar did not take an event; the relay retries the batch."""


class DaprEventPublisher:
    def __init__(
        self,
        url: str,
        *,
        pubsub: str,
        token: str | None = None,
        timeout: float = 10.0,
        concurrency: int = 32,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL for daprd: {url!r}")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._netloc = parts.netloc
        self._prefix = f"{parts.path.rstrip('/')}/v1.0/publish/{quote(pubsub, safe='')}/"
        self._headers = {"content-type": CLOUD_EVENT_JSON}
        if token:
            self._headers["dapr-api-token"] = token
        self._client = Http1Client(timeout=timeout, max_connections=concurrency)
        # events of a batch that failed elsewhere but were taken: not sent again on the retry
        self._taken: set[int] = set()

    async def publish(self, events: Sequence[PublishedEvent]) -> None:
        lanes: dict[tuple[str, str], list[PublishedEvent]] = {}
        for event in events:
            if event.seq and event.seq in self._taken:
                continue
            subject = str(event.body.get("subject") or event.body.get("id"))
            lanes.setdefault((event.topic, subject), []).append(event)
        outcomes = await asyncio.gather(
            *(self._lane(lane) for lane in lanes.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        self._taken.clear()

    async def _lane(self, events: list[PublishedEvent]) -> None:
        for event in events:
            await self._one(event)
            if event.seq:
                self._taken.add(event.seq)

    async def _one(self, event: PublishedEvent) -> None:
        body = json.dumps(event.body, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            answer = await self._client.post(
                scheme=self._scheme,
                connect_host=self._host,
                port=self._port,
                host_header=self._netloc,
                server_name=self._host,
                target=self._prefix + quote(event.topic, safe=""),
                body=body,
                headers=self._headers,
            )
        except HttpError as exc:
            raise PublishFailed(f"daprd unreachable: {exc}") from exc
        if answer.status != 204:
            raise PublishFailed(f"daprd answered {answer.status} to a publish on {event.topic!r}")

    async def aclose(self) -> None:
        await self._client.aclose()
