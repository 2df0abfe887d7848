"""Prometheus metrics: how on time duetime is, and what waits in it.

Counters and histograms are updated where things happen (a trigger starts and settles, a
delivery attempt ends, an HTTP request answers); the gauges of what is stored (jobs pending
and next due, dead letters, the outboxes) are sampled from the database by `Sampler`, every
`interval` seconds and not per scrape, so a busy Prometheus cannot load the database.

Labels are bounded: backend, outcome, channel, outbox, method, route template and status,
never a job name, user id or URL. Every process (`serve`, `worker`) has its own registry and
is scraped on its own: Prometheus adds `instance`. The names are the contract of
`deploy/grafana/duetime.json` and `deploy/prometheus/alerts.yaml`; see
docs/reference/metrics.md.

The trigger path keeps its bound children (`labels()` costs ≈ 3 µs a call here, next to
≈ 2 µs for `observe` itself and ≈ 1 µs for `inc`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.db.tables import dead_letters as job_dead_letters
from duetime.db.tables import events, jobs, schedule_outbox
from duetime.jobs.model import Answer

if TYPE_CHECKING:
    from duetime.jobs.model import Trigger
    from duetime.jobs.store import Outcome

log = logging.getLogger(__name__)

LATENESS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

trigger_lateness = Histogram(
    "duetime_trigger_lateness_seconds",
    "From a trigger's due time to the start of its handler (first attempts).",
    ["backend"],
    buckets=LATENESS_BUCKETS,
)
triggers = Counter(
    "duetime_triggers",
    "Trigger attempts by how they ended: success, retry, dead_lettered, app_not_found "
    "(the app answered 404, taken as delivered), dropped (no handler).",
    ["backend", "outcome"],
)
jobs_pending = Gauge("duetime_jobs_pending", "Jobs stored, due or not.", ["backend"])
jobs_next_due = Gauge(
    "duetime_jobs_next_due_timestamp_seconds",
    "When the earliest job is next due (Unix time); NaN when there is none.",
    ["backend"],
)
dead_letters = Gauge("duetime_dead_letters", "Job triggers kept as dead letters now.")
outbox_depth = Gauge("duetime_outbox_depth", "Rows waiting in an outbox.", ["outbox"])
outbox_age = Gauge(
    "duetime_outbox_oldest_age_seconds",
    "Age of the oldest row waiting in an outbox; 0 when it is empty.",
    ["outbox"],
)
deliveries = Counter(
    "duetime_deliveries",
    "Delivery attempts by channel and how they ended: success, retry, failed, dead_lettered.",
    ["channel", "outcome"],
)
delivery_duration = Histogram(
    "duetime_delivery_duration_seconds",
    "How long one delivery attempt took.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
sse_clients = Gauge("duetime_sse_clients", "Live notification streams open now.")
http_requests = Counter(
    "duetime_http_requests", "HTTP requests answered.", ["method", "route", "status"]
)
http_duration = Histogram(
    "duetime_http_request_duration_seconds",
    "From a request's arrival to the end of its answer.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)


TRIGGER_OUTCOMES = ("success", "retry", "dead_lettered", "app_not_found", "dropped")
DELIVERY_OUTCOMES = ("success", "retry", "failed", "dead_lettered")
CHANNELS = ("inbox", "webhook", "email", "pubsub", "push")


def prime(backend: str | None) -> None:
    """Create every labelled counter at 0, so the first event is a step `increase()` sees
    (a series that appears at 1 has no step)."""
    if backend is not None:
        for outcome in TRIGGER_OUTCOMES:
            triggers.labels(backend, outcome)
        trigger_lateness.labels(backend)
    for channel in CHANNELS:
        for outcome in DELIVERY_OUTCOMES:
            deliveries.labels(channel, outcome)


_children: dict[tuple[str, ...], Any] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    key = (metric._name, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def trigger_started(backend: str, trigger: Trigger) -> None:
    if trigger.attempt == 1:  # a retry's wait is the failure policy's, not lateness
        seconds = (trigger.fired_at - trigger.scheduled_at).total_seconds()
        _child(trigger_lateness, backend).observe(max(seconds, 0.0))


def first_attempt_started(backend: str, late_us: int) -> None:
    """`trigger_started` for a first attempt `late_us` after its tick, without datetimes."""
    _child(trigger_lateness, backend).observe(max(late_us, 0) / 1e6)


def trigger_settled(
    backend: str, outcome: Outcome, answer: Answer | None, error: str | None
) -> None:
    if error is not None:
        kind = "retry" if outcome.dead_letter is None else "dead_lettered"
    elif answer is Answer.APP_NOT_FOUND:
        kind = "app_not_found"
    elif answer is Answer.NO_HANDLER:
        kind = "dropped"
    else:
        kind = "success"
    _child(triggers, backend, kind).inc()


def delivery_attempted(channel: str, outcome: str, seconds: float | None = None) -> None:
    deliveries.labels(channel, outcome).inc()
    if seconds is not None:
        delivery_duration.labels(channel).observe(seconds)


class Sampler:
    """Sets the gauges of what is stored, from the database, every `interval` seconds."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        backend: str | None,
        streams: Callable[[], int],
        interval: float = 5.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._backend = backend
        self._streams = streams
        self._interval = interval
        self._now = now
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        prime(self._backend)
        self._task = asyncio.create_task(self._run(), name="duetime-metrics-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as exc:  # a metric must never stop the service
                log.warning("could not sample the metrics gauges: %s", exc)
            await asyncio.sleep(self._interval)

    async def sample(self) -> None:
        """`backend` None (the worker role): the jobs are the API's to report."""
        sse_clients.set(self._streams())
        async with self._engine.connect() as conn:
            if self._backend is not None:
                count, earliest = (
                    await conn.execute(select(func.count(), func.min(jobs.c.next_fire_us)))
                ).one()
                jobs_pending.labels(self._backend).set(count)
                jobs_next_due.labels(self._backend).set(
                    math.nan if earliest is None else earliest / 1e6
                )
                dead = select(func.count()).select_from(job_dead_letters)
                dead_letters.set((await conn.execute(dead)).scalar_one())
            waiting = events.c.published_us.is_(None)
            count, oldest = (
                await conn.execute(
                    select(func.count(), func.min(events.c.created_us)).where(waiting)
                )
            ).one()
            self._outbox("events", count, oldest)
            count, oldest = (
                await conn.execute(select(func.count(), func.min(schedule_outbox.c.created_us)))
            ).one()
            self._outbox("scheduling", count, oldest)

    def _outbox(self, name: str, count: int, oldest_us: int | None) -> None:
        outbox_depth.labels(name).set(count)
        age = 0.0 if oldest_us is None else max(self._now() - oldest_us / 1e6, 0.0)
        outbox_age.labels(name).set(age)
