"""`EmbeddedPubSub`: Dapr's pub/sub building block served by duetime (see the package
docstring for the contract)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.clock import Clock
from duetime.sidecar.apps import App, AppDirectory
from duetime.sidecar.pubsub.delivery import DeliveryLoop, RetryPolicy
from duetime.sidecar.pubsub.envelope import (
    BadMetadata,
    MalformedCloudEvent,
    build_envelope,
    from_cloud_event,
    go_json,
    is_raw_payload,
)
from duetime.sidecar.pubsub.grpc_app import GrpcTopicClient, GrpcUnavailable
from duetime.sidecar.pubsub.requests import (
    BulkEntry,
    PubSubNotFoundError,
    PubSubRequestError,
)
from duetime.sidecar.pubsub.store import Outgoing, SqlPubSubStore
from duetime.sidecar.pubsub.subscriptions import (
    Component,
    Resources,
    Subscription,
    parse_programmatic,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 << 20
"""daprd's default `--max-body-size` (4 MiB)."""
MAX_TOPIC_LENGTH = 400
BUILTIN_TYPE = "pubsub.duetime"
_DISCOVERY_MAX_DELAY = 5.0
_CATCH_UP_DELAY = 5.0


class EmbeddedPubSub:
    """Publishes into duetime's database and delivers to the apps' subscriptions."""

    def __init__(
        self,
        engine: AsyncEngine,
        apps: AppDirectory,
        clock: Clock,
        *,
        pubsubs: Sequence[str] = ("pubsub",),
        resources: Resources | None = None,
        policy: RetryPolicy | None = None,
        concurrency: int = 10,
        timeout: float = 30.0,
        retention: timedelta = timedelta(hours=24),
    ) -> None:
        self._apps = apps
        self._clock = clock
        self._resources = resources or Resources()
        self._components: dict[str, Component] = {
            name: Component(name, BUILTIN_TYPE, "v1") for name in pubsubs
        }
        for component in self._resources.components:
            self._components[component.name] = component
        self.store = SqlPubSubStore(engine)
        self._subs: dict[str, dict[tuple[str, str], Subscription]] = {}
        self._delivery = DeliveryLoop(
            self.store,
            {a.app_id: a for a in apps.all()},
            self._lookup,
            clock,
            policy or RetryPolicy(),
            concurrency=concurrency,
            timeout=timeout,
            retention=retention,
        )
        self._timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self.discovered: dict[str, asyncio.Event] = {a.app_id: asyncio.Event() for a in apps.all()}
        """Set once an app's subscriptions are known (tests wait on it)."""

    # -- publishing ----------------------------------------------------------------------
    def check(self, app: App, pubsub: str, topic: str) -> None:
        """Raise as `publish` would for an unknown pub/sub or a bad topic name."""
        component = self._components.get(pubsub)
        if component is None or not component.visible_to(app.app_id):
            raise PubSubNotFoundError(f"pubsub {pubsub} is not found")
        if not topic:
            raise PubSubRequestError(
                f"topic is empty in pubsub {pubsub}", status=404, code="ERR_TOPIC_NAME_EMPTY"
            )
        if len(topic) > MAX_TOPIC_LENGTH:
            raise PubSubRequestError(f"topic names are at most {MAX_TOPIC_LENGTH} characters")

    def _message(
        self,
        app: App,
        pubsub: str,
        topic: str,
        data: bytes,
        content_type: str | None,
        metadata: Mapping[str, str],
        raw: bool,
        traceparent: str,
        tracestate: str,
    ) -> Outgoing:
        if len(data) > MAX_BODY_BYTES:
            raise PubSubRequestError(
                f"error when publishing to topic {topic} in pubsub {pubsub}: "
                f"the event is larger than the {MAX_BODY_BYTES} byte limit",
                status=413,
                grpc_code="RESOURCE_EXHAUSTED",
            )
        if not raw:
            try:
                envelope = build_envelope(
                    source=app.app_id,
                    pubsub=pubsub,
                    topic=topic,
                    data=data,
                    content_type=content_type,
                    metadata=metadata,
                    now=self._clock.now(),
                    traceparent=traceparent,
                    tracestate=tracestate,
                )
            except MalformedCloudEvent as exc:
                raise PubSubRequestError(
                    f"cannot create cloudevent: {exc}", code="ERR_PUBSUB_CLOUD_EVENTS_SER"
                ) from None
            data = go_json(envelope)
        return Outgoing(pubsub, topic, data, dict(metadata))

    @staticmethod
    def _raw(pubsub: str, metadata: Mapping[str, str]) -> bool:
        try:
            return is_raw_payload(metadata)
        except BadMetadata as exc:
            raise PubSubRequestError(
                f"failed deserializing metadata. Error: {exc}", code="ERR_PUBSUB_REQUEST_METADATA"
            ) from None

    async def publish(
        self,
        app: App,
        pubsub: str,
        topic: str,
        data: bytes,
        content_type: str | None,
        metadata: Mapping[str, str],
        *,
        traceparent: str = "",
        tracestate: str = "",
    ) -> None:
        """Store one event durably (returns once committed). Raises `PubSubNotFoundError`
        or `PubSubRequestError`; nothing is stored then."""
        self.check(app, pubsub, topic)
        raw = self._raw(pubsub, metadata)
        message = self._message(
            app, pubsub, topic, data, content_type, metadata, raw, traceparent, tracestate
        )
        await self._write([message])

    async def _write(self, messages: list[Outgoing]) -> None:
        """Store, then hand the new deliveries to the delivery loop (no claim needed)."""
        lease_us = self._delivery.lease_for_new()
        fresh = await self.store.write(messages, self._clock.now_micros(), lease_us=lease_us)
        self._delivery.offer(fresh)
        if lease_us is None:
            self._delivery.kick()  # written due: the loop claims them

    async def bulk_publish(
        self,
        app: App,
        pubsub: str,
        topic: str,
        entries: Sequence[BulkEntry],
        metadata: Mapping[str, str],
    ) -> None:
        """Store every entry or none (one transaction; daprd's Redis component publishes
        them one by one and reports the failed ones). Entry metadata overrides the
        request's. Raises as `publish`, and `PubSubRequestError` for a missing or
        repeated `entry_id`."""
        self.check(app, pubsub, topic)
        raw = self._raw(pubsub, metadata)
        seen: set[str] = set()
        messages = []
        for entry in entries:
            if not entry.entry_id or entry.entry_id in seen:
                raise PubSubRequestError(
                    f"error marshaling events to bytes for topic {topic} pubsub {pubsub}. "
                    "error: entryId is duplicated or not present for entry",
                    code="ERR_PUBSUB_EVENTS_SER",
                )
            seen.add(entry.entry_id)
            # as daprd: request metadata fills in an entry's only when the entry has some
            meta = {**metadata, **entry.metadata} if entry.metadata else {}
            messages.append(
                self._message(
                    app, pubsub, topic, entry.event, entry.content_type, meta, raw, "", ""
                )
            )
        if messages:
            await self._write(messages)

    async def publish_cloud_events(
        self, pubsub: str, topic: str, events: Sequence[dict[str, Any]]
    ) -> None:
        """Store structured CloudEvents (duetime's own task and reminder events), completed
        exactly as daprd completes an `application/cloudevents+json` publish."""
        now = self._clock.now()
        messages = [
            Outgoing(
                pubsub, topic, go_json(from_cloud_event(e, pubsub=pubsub, topic=topic, now=now)), {}
            )
            for e in events
        ]
        if messages:
            await self._write(messages)

    # -- metadata ------------------------------------------------------------------------
    def pubsub_names(self) -> list[str]:
        return sorted(self._components)

    def components(self, app: App | None = None) -> list[dict[str, Any]]:
        """The pub/sub components as daprd's `GET /v1.0/metadata` lists them."""
        return [
            {"name": c.name, "type": c.type, "version": c.version}
            for c in self._components.values()
            if app is None or c.visible_to(app.app_id)
        ]

    def subscriptions(self, app: App) -> list[dict[str, Any]]:
        """The app's subscriptions as daprd's `GET /v1.0/metadata` lists them (`type`
        `DECLARATIVE` or `PROGRAMMATIC`; `rules` a list of `{match?, path}`)."""
        return [s.metadata_entry() for s in self._subs.get(app.app_id, {}).values()]

    def subscription_list(self, app: App) -> list[Subscription]:
        return list(self._subs.get(app.app_id, {}).values())

    def _lookup(self, app_id: str, pubsub: str, topic: str) -> Subscription | None:
        return self._subs.get(app_id, {}).get((pubsub, topic))

    # -- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        for app in self._apps.all():
            declared = self._resources.subscriptions_for(app.app_id)
            if app.url is None:
                if declared:
                    log.warning(
                        "app %r: pub/sub delivery needs a URL; its subscriptions are not served",
                        app.app_id,
                    )
                self.discovered[app.app_id].set()
                continue
            self._spawn(self._discover(app, declared))
        await self._delivery.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._delivery.stop()
        await self.store.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _discover(self, app: App, declared: list[Subscription]) -> None:
        """Declarative subscriptions first, then the app's `GET /dapr/subscribe`, asked
        again with backoff (0.25 s doubling to 5 s) until the app answers."""
        await self._adopt(app, declared)
        programmatic = await self._ask(app)
        await self._adopt(app, programmatic)
        self.discovered[app.app_id].set()
        await asyncio.sleep(_CATCH_UP_DELAY)  # publishes that raced the groups' creation
        now_us = self._clock.now_micros()
        for sub in self._subs.get(app.app_id, {}).values():
            if await self.store.ensure_group(app.app_id, sub.pubsub, sub.topic, now_us):
                self._delivery.kick()

    async def _ask(self, app: App) -> list[Subscription]:
        assert app.url is not None
        if app.protocol == "grpc":
            return await self._ask_grpc(app)
        headers = {"dapr-app-id": app.app_id}
        if app.app_token:
            headers["dapr-api-token"] = app.app_token
        delay = 0.25
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            while True:
                try:
                    answer = await client.get(
                        f"{app.url.rstrip('/')}/dapr/subscribe", headers=headers
                    )
                except httpx.HTTPError as exc:
                    log.debug("app %r: /dapr/subscribe unreachable (%s)", app.app_id, exc)
                else:
                    if answer.status_code == 200:
                        try:
                            body = json.loads(answer.content) if answer.content.strip() else None
                        except ValueError as exc:
                            log.error(
                                "app %r: /dapr/subscribe answered bad JSON (%s)", app.app_id, exc
                            )
                            return []
                        return parse_programmatic(app.app_id, body)
                    if answer.status_code < 500:
                        if answer.status_code != 404:
                            log.error(
                                "app %r: /dapr/subscribe answered %d; no programmatic "
                                "subscriptions",
                                app.app_id,
                                answer.status_code,
                            )
                        return []
                    log.warning(
                        "app %r: /dapr/subscribe answered %d; asking again",
                        app.app_id,
                        answer.status_code,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _DISCOVERY_MAX_DELAY)

    async def _ask_grpc(self, app: App) -> list[Subscription]:
        """`AppCallback.ListTopicSubscriptions`, asked again with backoff until the app's
        gRPC server answers."""
        assert app.url is not None
        client = GrpcTopicClient(app.url, token=app.app_token, timeout=self._timeout)
        delay = 0.25
        try:
            while True:
                try:
                    return await client.subscriptions(app.app_id)
                except GrpcUnavailable as exc:
                    log.debug("app %r: ListTopicSubscriptions failed (%s)", app.app_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _DISCOVERY_MAX_DELAY)
        finally:
            await client.aclose()

    async def _adopt(self, app: App, subs: list[Subscription]) -> None:
        table = self._subs.setdefault(app.app_id, {})
        now_us = self._clock.now_micros()
        for sub in subs:
            key = (sub.pubsub, sub.topic)
            component = self._components.get(sub.pubsub)
            if component is None or not component.visible_to(app.app_id):
                log.warning(
                    "app %r: subscription to topic %r of unknown pubsub %r ignored",
                    app.app_id,
                    sub.topic,
                    sub.pubsub,
                )
                continue
            if key in table:
                log.warning(
                    "app %r: a second subscription to pubsub %r topic %r ignored",
                    app.app_id,
                    sub.pubsub,
                    sub.topic,
                )
                continue
            table[key] = sub
            if await self.store.ensure_group(app.app_id, sub.pubsub, sub.topic, now_us):
                self._delivery.kick()
            log.info(
                "app %r subscribes to pubsub %r topic %r (%s)",
                app.app_id,
                sub.pubsub,
                sub.topic,
                sub.kind.lower(),
            )
