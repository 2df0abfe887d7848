"""The delivery worker: sends due deliveries through their channel, records every attempt,
retries with backoff and turns exhausted deliveries into dead letters.

It sleeps until the earliest next attempt and is woken by `kick()` when deliveries are added
or replayed; nothing polls on a fixed interval. Deliveries are rows, so they survive a
restart: at start every due one is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping

from opentelemetry.trace import SpanKind

from duetime import logs, metrics
from duetime.clock import Clock
from duetime.delivery.model import (
    Attempt,
    ChannelName,
    Claimed,
    DeliveryState,
    Outcome,
    RetryPolicy,
    backoff,
    system_random,
)
from duetime.delivery.port import Channel
from duetime.delivery.store import Result, SqlDeliveryStore
from duetime.events.model import OutgoingEvent, reminder_event
from duetime.timefmt import from_micros
from duetime.tracing import Attributes, Tracing, set_error

log = logging.getLogger(__name__)
_OUTCOMES = {"delivered": "success", "pending": "retry", "dead": "dead_lettered"}

_MAX_SLEEP = 3600.0  # re-check the table at least hourly (rows another replica added)


class DeliveryWorker:
    def __init__(
        self,
        store: SqlDeliveryStore,
        channels: Mapping[ChannelName, Channel],
        clock: Clock,
        policy: RetryPolicy,
        *,
        concurrency: int = 100,
        on_recorded: Callable[[], None] = lambda: None,
        rand: Callable[[], float] = system_random,
        tracing: Tracing | None = None,
    ) -> None:
        """`tracing`: a span per attempt, a child of the fire that wrote the delivery (None:
        tracing is off)."""
        self._store = store
        self._tracing = tracing
        self._channels = dict(channels)
        self._clock = clock
        self._policy = policy
        self._concurrency = concurrency
        self._on_recorded = on_recorded
        self._rand = rand
        self._wakeup = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._ready: deque[Claimed] = deque()  # claimed, waiting for a free slot
        self._next_us: int | None = None
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duetime-delivery-worker")
        self.kick()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    @property
    def lease_us(self) -> int:
        return int((self._policy.attempt_timeout * 2 + 5) * 1_000_000)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._step()
                delay = 0.1
            except Exception as exc:
                log.warning("delivery worker: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _step(self) -> None:
        """Claim due deliveries in batches of up to twice the concurrency, start them as
        slots free up, and sleep until the next one is due or something changes."""
        self._wakeup.clear()
        self._start_ready()
        held = len(self._inflight) + len(self._ready)
        if held <= self._concurrency:  # at least half the buffer is free: refill it
            want = 2 * self._concurrency - held
            claimed = await self._store.claim(self._clock.now_micros(), want, self.lease_us)
            self._ready.extend(claimed)
            self._start_ready()
            if len(claimed) == want:
                return  # maybe more are due
            self._next_us = await self._store.next_due_us()
        timeout = _MAX_SLEEP
        if self._next_us is not None:
            timeout = min(_MAX_SLEEP, max(0.0, (self._next_us - self._clock.now_micros()) / 1e6))
        if timeout > 0 or held > self._concurrency:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout or None):
                    await self._wakeup.wait()

    def _start_ready(self) -> None:
        while self._ready and len(self._inflight) < self._concurrency:
            task = asyncio.create_task(self._attempt(self._ready.popleft()))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wakeup.set()

    async def _attempt(self, claimed: Claimed) -> None:
        delivery = claimed.delivery
        logs.note(delivery_id=delivery.id)
        started_us = self._clock.now_micros()
        if self._tracing is None:
            outcome = await self._send(claimed)
        else:
            attributes: Attributes = {
                "duetime.delivery.id": delivery.id,
                "duetime.delivery.channel": delivery.channel,
                "duetime.delivery.attempt": claimed.attempt,
            }
            with self._tracing.span(
                "duetime.delivery.attempt",
                attributes,
                kind=SpanKind.CLIENT,
                parent=delivery.trace_context,
            ) as span:
                outcome = await self._send(claimed)
                if outcome.http_status is not None:
                    span.set_attribute("http.response.status_code", outcome.http_status)
                if not outcome.ok:
                    set_error(span, outcome.error or "failed")
        finished_us = self._clock.now_micros()
        result = self.judge(claimed, outcome, started_us, finished_us)
        try:
            await self._store.record(result)
        except Exception:
            # The lease runs out and the attempt is made again: at least once.
            log.exception("could not record attempt %d of %s", claimed.attempt, delivery.id)
            return
        metrics.delivery_attempted(
            delivery.channel, _OUTCOMES[result.state], (finished_us - started_us) / 1e6
        )
        if result.event is not None:
            self._on_recorded()
        if result.state == "dead":
            log.warning(
                "delivery %s (%s) is a dead letter after %d attempts: %s",
                delivery.id,
                delivery.channel,
                claimed.attempt,
                outcome.error,
            )

    async def _send(self, claimed: Claimed) -> Outcome:
        delivery = claimed.delivery
        channel = self._channels.get(delivery.channel)
        if channel is None:
            return Outcome(False, error=f"the {delivery.channel} channel is not configured")
        try:
            async with asyncio.timeout(self._policy.attempt_timeout):
                return await channel.send(claimed)
        except TimeoutError:
            return Outcome(
                False, error=f"attempt timed out after {self._policy.attempt_timeout:g} s"
            )
        except Exception as exc:  # an adapter bug must not stop the worker
            log.exception("channel %s failed on delivery %s", delivery.channel, delivery.id)
            return Outcome(False, error=f"{type(exc).__name__}: {exc}")

    def judge(
        self, claimed: Claimed, outcome: Outcome, started_us: int, finished_us: int
    ) -> Result:
        """The delivery's next state after an attempt with `outcome`."""
        delivery = claimed.delivery
        number = claimed.attempt
        attempt = Attempt(
            delivery.id,
            delivery.channel,
            number,
            "delivered" if outcome.ok else "failed",
            outcome.error,
            outcome.http_status,
            started_us,
            finished_us,
        )
        state: DeliveryState
        next_us = finished_us
        if outcome.ok:
            state = "delivered"
        elif outcome.permanent or number >= delivery.attempt_limit:
            state = "dead"
        else:
            state = "pending"
            wait = backoff(self._policy, number, self._rand)
            if outcome.retry_after is not None:
                wait = max(wait, outcome.retry_after)
            next_us = finished_us + int(wait * 1_000_000)
        event = None
        if state != "pending":
            event = _outcome_event(claimed, state, attempt)
        return Result(claimed, attempt, state, next_us, event)


def _outcome_event(claimed: Claimed, state: DeliveryState, attempt: Attempt) -> OutgoingEvent:
    delivery = claimed.delivery
    data = claimed.event().get("data", {})
    return reminder_event(
        "delivered" if state == "delivered" else "failed",
        user_id=delivery.user_id,
        task_id=str(data.get("task_id", "")),
        time=from_micros(attempt.finished_us),
        data={
            "notification_id": delivery.notification_id,
            "delivery_id": delivery.id,
            "channel": delivery.channel,
            "attempt": attempt.attempt,
            "error": attempt.error,
            "http_status": attempt.http_status,
        },
    )
