"""Delivery of stored messages to the apps' subscriptions (HTTP here; gRPC apps through
`grpc_app`), with daprd's status contract (1.16.5,
`dapr/pkg/runtime/subscription/postman/http/http.go`):

* `POST {app.url}{route}` with the stored bytes as the body, `content-type:
  application/cloudevents+json`, a `pubsubname` header and one header per publish metadata
  entry, `traceparent` when the event carries one, `dapr-api-token` when the app has a token.
  A subscription with `rawPayload: "true"` gets the stored bytes as `data_base64` of a
  fresh CloudEvent.
* 2xx with an empty or non-JSON body, no `status`, `""` or `"SUCCESS"`: done. `"RETRY"` or
  any other status string, a non-2xx answer, a timeout or no connection: retried.
  `"DROP"`: dropped with a warning, and sent to the dead-letter topic when the subscription
  has one (daprd does both). 404: dropped with an error line, never dead-lettered.
* Retries back off exponentially (`base × 2^(n−1)`, at most `max_delay`); after
  `max_attempts` attempts the message goes to the subscription's `deadLetterTopic` on the
  same pub/sub (published into this broker, unchanged) or is dropped with a log line.
* An event no rule routes, an expired one (`expiration`), or stored bytes that are not a
  JSON object (a raw payload to a subscription without `rawPayload`) are not delivered:
  dead-lettered when there is a topic for it, else dropped with a log line.

Order: up to `concurrency` deliveries are in flight at once, across topics and within one,
as Dapr's Redis component runs 10 workers on one queue (`concurrency`, default 10): there is
no per-topic order, and a retried message does not hold back the ones after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from duetime.clock import Clock
from duetime.sidecar.apps import App
from duetime.sidecar.pubsub.envelope import (
    CLOUD_EVENT_JSON,
    go_json,
    has_expired,
    raw_payload_envelope,
)
from duetime.sidecar.pubsub.grpc_app import GrpcTopicClient
from duetime.sidecar.pubsub.http import AppClient, HttpError
from duetime.sidecar.pubsub.store import Claimed, Outcome, Outgoing, SqlPubSubStore
from duetime.sidecar.pubsub.subscriptions import Subscription

log = logging.getLogger(__name__)

Lookup = Callable[[str, str, str], Subscription | None]
"""(app_id, pubsub, topic) → the app's current subscription, if any."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_NO_TRACE = "00-00000000000000000000000000000000-0000000000000000-00"
_POSTPONE_US = 30_000_000  # a delivery whose subscription is gone (for now)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay_us(self, attempts: int) -> int:
        """The wait after the `attempts`-th failed attempt."""
        seconds = min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0))
        return int(seconds * 1_000_000)


class _Verdict(Exception):
    def __init__(self, state: str, error: str) -> None:
        super().__init__(error)
        self.state = state
        self.error = error


class DeliveryLoop:
    """Claims due deliveries in batches and sends them, `concurrency` at a time; `kick()`
    after a publish wakes it. Sleeps until the earliest retry otherwise. A claimed delivery
    is leased (`timeout` + 5 s): one that a crash interrupted is due again after that, one
    that a clean stop interrupted at once. A fresh publish's deliveries are written leased
    to this loop and handed over in memory (`lease_for_new`, `offer`): no claim for them."""

    def __init__(
        self,
        store: SqlPubSubStore,
        apps: dict[str, App],
        lookup: Lookup,
        clock: Clock,
        policy: RetryPolicy,
        *,
        concurrency: int = 10,
        timeout: float = 30.0,
        retention: timedelta = timedelta(hours=24),
    ) -> None:
        self._store = store
        self._apps = apps
        self._lookup = lookup
        self._clock = clock
        self._policy = policy
        self._concurrency = concurrency
        self._timeout = timeout
        self._lease_us = int((timeout + 5) * 1_000_000)
        self._retention = retention
        self._wake = asyncio.Event()
        self._prefetch = max(10 * concurrency, 100)
        self._queue: asyncio.Queue[Claimed] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._held: set[int] = set()
        self._outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()  # None: stop
        self._task: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None
        self._clients: dict[str, AppClient] = {}
        self._grpc_clients: dict[str, GrpcTopicClient] = {}
        self._postponed: set[tuple[str, str, str]] = set()
        self._stopping = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    def lease_for_new(self) -> int | None:
        """The lease to write new deliveries with, so they come here without a claim
        (`offer`); None when the queue is full or the loop is not running (they are then
        written due, and claimed)."""
        if self._task is None or self._queue.qsize() >= self._prefetch:
            return None
        return self._lease_us

    def offer(self, deliveries: list[Claimed]) -> None:
        """Deliveries written leased to this loop (see `lease_for_new`)."""
        for item in deliveries:
            if item.id not in self._held:
                self._held.add(item.id)
                self._queue.put_nowait(item)

    async def start(self) -> None:
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="duetime-pubsub-claims")
            self._purger = asyncio.create_task(self._purge(), name="duetime-pubsub-purge")
            self._workers = [
                asyncio.create_task(self._work(), name="duetime-pubsub-delivery")
                for _ in range(self._concurrency)
            ]
            self._workers.append(
                asyncio.create_task(self._recorder(), name="duetime-pubsub-record")
            )

    async def stop(self) -> None:
        # The loops that talk to the database end between two statements, not inside one:
        # a driver call cancelled halfway would answer later into a closed event loop.
        self._stopping.set()
        self._wake.set()
        self._outcomes.put_nowait(None)
        quiet = [t for t in (self._task, self._purger, *self._workers[-1:]) if t is not None]
        with contextlib.suppress(TimeoutError, Exception):
            async with asyncio.timeout(10):
                await asyncio.gather(*quiet, return_exceptions=True)
        tasks = [t for t in (self._task, self._purger, *self._workers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = self._purger = None
        self._workers = []
        left = [
            o for o in (self._outcomes.get_nowait() for _ in range(self._outcomes.qsize())) if o
        ]
        if left:  # what was delivered but not yet written: written now, or sent again later
            with contextlib.suppress(Exception):
                await self._store.record_many(left)
                self._held.difference_update(o.claimed.id for o in left)
        if self._held:  # claimed, not finished: due again at the next start, not after the lease
            with contextlib.suppress(Exception):
                await self._store.release(sorted(self._held), self._clock.now_micros())
        self._held.clear()
        self._queue = asyncio.Queue()
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        for grpc_client in self._grpc_clients.values():
            await grpc_client.aclose()
        self._grpc_clients.clear()

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await self._step()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pub/sub delivery loop: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _step(self) -> None:
        """Keep the queue of claimed deliveries topped up (claimed in batches, leased);
        otherwise sleep until the earliest due one or a kick."""
        self._wake.clear()
        wait: float | None = None
        if self._queue.qsize() <= self._concurrency:
            now_us = self._clock.now_micros()
            room = self._prefetch - self._queue.qsize()
            claimed = await self._store.claim(now_us, room, self._lease_us)
            for item in claimed:
                if item.id not in self._held:  # a lease that ran out while it queued here
                    self._held.add(item.id)
                    self._queue.put_nowait(item)
            if len(claimed) == room:
                return
            due = await self._store.next_due_us()
            wait = None if due is None else max(0.0, (due - now_us) / 1_000_000)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._wake.wait()

    def _record(self, outcome: Outcome) -> None:
        """Hand an outcome to the recorder, which writes what has piled up in one
        transaction; the delivery stays held (not claimed again) until it is written."""
        self._outcomes.put_nowait(outcome)

    async def _recorder(self) -> None:
        while True:
            first = await self._outcomes.get()
            if first is None:  # stop: what is left is written by `stop`
                return
            batch = [first]
            while not self._outcomes.empty() and len(batch) < 1000:
                if (more := self._outcomes.get_nowait()) is None:
                    self._outcomes.put_nowait(None)
                    break
                batch.append(more)
            delay = 0.1
            while True:
                try:
                    await self._store.record_many(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("pub/sub outcomes not recorded (%s); retrying", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            for outcome in batch:
                self._held.discard(outcome.claimed.id)
            if any(o.dead_letter is not None for o in batch):
                self.kick()

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._deliver(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pub/sub delivery of message %d failed", item.message_seq)
            if self._queue.qsize() <= self._concurrency:
                self._wake.set()

    async def _purge(self) -> None:
        while not self._stopping.is_set():
            try:
                before = self._clock.now_micros() - int(self._retention.total_seconds() * 1e6)
                await self._store.purge(before)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pub/sub purge failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(600):
                    await self._stopping.wait()

    # -- one delivery ----------------------------------------------------------------------
    async def _deliver(self, item: Claimed) -> None:
        sub = self._lookup(item.app_id, item.pubsub, item.topic)
        app = self._apps.get(item.app_id)
        now_us = self._clock.now_micros()
        if sub is None or app is None or app.url is None:
            key = (item.app_id, item.pubsub, item.topic)
            if key not in self._postponed:
                self._postponed.add(key)
                log.warning(
                    "pub/sub %s topic %r: app %r has no subscription to deliver to now; "
                    "its messages wait",
                    item.pubsub,
                    item.topic,
                    item.app_id,
                )
            self._record(
                Outcome(
                    item, "retry", now_us, item.attempts, now_us + _POSTPONE_US, "no subscription"
                )
            )
            return
        attempts = item.attempts + 1
        try:
            await self._attempt(app, sub, item)
        except _Verdict as verdict:
            await self._settle(item, sub, verdict, attempts)
            return
        self._record(Outcome(item, "done", self._clock.now_micros(), attempts))

    async def _settle(
        self, item: Claimed, sub: Subscription, verdict: _Verdict, attempts: int
    ) -> None:
        now_us = self._clock.now_micros()
        state = verdict.state
        if state == "retry" and attempts < self._policy.max_attempts:
            next_us = now_us + self._policy.delay_us(attempts)
            self._record(Outcome(item, "retry", now_us, attempts, next_us, verdict.error))
            return
        letter = None
        where = (
            f"pub/sub {item.pubsub} topic {item.topic!r} message {item.message_seq} "
            f"to app {item.app_id!r}"
        )
        if state == "retry":
            state = "exhausted"
        if state in _DEAD_LETTERED and sub.dead_letter_topic:
            letter = Outgoing(item.pubsub, sub.dead_letter_topic, item.data, item.metadata)
            log.warning(
                "%s: %s (%s); sent to the dead-letter topic %r",
                where,
                _WHY[state],
                verdict.error,
                sub.dead_letter_topic,
            )
        else:
            level = logging.INFO if state == "unrouted" else logging.WARNING
            log.log(level, "%s: %s (%s); dropped", where, _WHY[state], verdict.error)
        self._record(
            Outcome(
                item,
                "dead" if letter else "dropped",
                now_us,
                attempts,
                error=verdict.error,
                dead_letter=letter,
            )
        )

    async def _attempt(self, app: App, sub: Subscription, item: Claimed) -> None:
        """Returns on success; raises `_Verdict` otherwise."""
        body = item.data
        event: Any
        if sub.raw_payload:
            event = raw_payload_envelope(item.data, pubsub=item.pubsub, topic=item.topic)
            body = go_json(event)
        else:
            try:
                event = json.loads(item.data)
            except (ValueError, UnicodeDecodeError):
                event = None
            if not isinstance(event, dict):
                raise _Verdict("undeliverable", "the message is not a CloudEvent (a raw payload?)")
        if has_expired(event, self._clock.now()):
            raise _Verdict("undeliverable", f"expired at {event.get('expiration')}")
        path = sub.route(event)
        if path is None:
            raise _Verdict("unrouted", "no routing rule matches the event")
        if app.protocol == "grpc":
            await self._attempt_grpc(app, event, item, path)
            return
        headers = {"content-type": CLOUD_EVENT_JSON, "pubsubname": item.pubsub}
        for key, value in item.metadata.items():
            if _HEADER_NAME.match(key) and "\n" not in value and "\r" not in value:
                headers.setdefault(key.lower(), value)
        trace = event.get("traceparent", event.get("traceid")) if not sub.raw_payload else None
        if trace is not None:
            headers["traceparent"] = str(trace) if trace else _NO_TRACE
        if app.app_token:
            headers["dapr-api-token"] = app.app_token
        client = self._client(app)
        try:
            status, answer = await client.post(path, body, headers)
        except HttpError as exc:
            raise _Verdict("retry", f"app unreachable: {exc}") from None
        if 200 <= status < 300:
            verdict = _app_status(answer)
            if verdict in ("", "SUCCESS", None):
                return
            if verdict == "DROP":
                raise _Verdict("drop", "the app answered DROP")
            raise _Verdict("retry", f"the app answered status {verdict!r}")
        if status == 404:
            raise _Verdict("notfound", f"the app answered 404 on {path}")
        text = answer[:200].decode("utf-8", "replace")
        raise _Verdict("retry", f"the app answered {status}: {text}")

    async def _attempt_grpc(self, app: App, event: Any, item: Claimed, path: str) -> None:
        client = self._grpc_clients.get(app.app_id)
        if client is None:
            assert app.url is not None
            client = GrpcTopicClient(app.url, token=app.app_token, timeout=self._timeout)
            self._grpc_clients[app.app_id] = client
        metadata = {"pubsubname": item.pubsub, **item.metadata}
        verdict, why = await client.deliver(
            event, pubsub=item.pubsub, topic=item.topic, path=path, metadata=metadata
        )
        if verdict == "done":
            return
        if verdict == "drop":
            raise _Verdict("drop", why)
        if verdict == "unimplemented":
            raise _Verdict("notfound", why)  # daprd: not retriable, not dead-lettered
        raise _Verdict("retry", why)

    def _client(self, app: App) -> AppClient:
        client = self._clients.get(app.app_id)
        if client is None:
            assert app.url is not None
            client = AppClient(app.url, timeout=self._timeout, max_connections=self._concurrency)
            self._clients[app.app_id] = client
        return client


_DEAD_LETTERED = ("exhausted", "drop", "undeliverable", "unrouted")  # not a 404, as daprd
_WHY = {
    "exhausted": "retries exhausted",
    "drop": "the app answered DROP",
    "undeliverable": "not deliverable",
    "unrouted": "no route matches",
    "notfound": "the app has no such route (404)",
}


def _app_status(body: bytes) -> str | None:
    """The `status` of a 2xx answer; None when there is none to read (success)."""
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(decoded, dict):
        return None
    status = decoded.get("status", "")
    return status if isinstance(status, str) else None
