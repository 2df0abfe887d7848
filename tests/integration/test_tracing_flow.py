"""One trace from a task request to its webhook, in process on SQLite: the request's span,
the task service's and the scheduling span the reminder job keeps; the trigger's span, linked
to it; the fire; the webhook attempt, whose `traceparent` the receiver gets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from duetime.app import create_app
from duetime.auth import issue_token
from duetime.bootstrap import bootstrap
from duetime.db.engine import create_engine, migrate
from duetime.db.helpers import transaction
from duetime.settings import Settings
from duetime.tasks.model import REMINDER_JOB_PREFIX
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.scheduling import Intent
from duetime.testing import InMemoryJobScheduler
from duetime.tracing import Tracing
from tests.e2e.conftest import Receiver

SECRET = "test-secret-for-tracing-0123456789abcdef"
USER = "alice@example.com"
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # the client's own trace


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    yield InMemorySpanExporter()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in spans]}"
    return found[0]


async def until_ended(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    for _ in range(500):
        spans = list(exporter.get_finished_spans())
        if any(s.name == name for s in spans):
            return spans
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {name} span in 10 s")


async def test_a_task_request_is_one_trace_to_its_webhook(
    tmp_path: Path, exporter: InMemorySpanExporter, receiver: Receiver
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        data_dir=tmp_path / "data",
        jwt_secret=SECRET,
        webhook_allow_private=True,
        delivery_backoff_base=0.05,
        access_log=False,
    )
    runtime = bootstrap(settings, tracer_provider=provider)
    app = create_app(settings, runtime)
    token = issue_token(SECRET, USER, ttl=timedelta(hours=1), now=datetime.now(UTC))
    hook = f"{receiver.url}/job/hook?key=s3cr3t-in-the-url"
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://duetime",
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        ) as client:
            r = await client.put(
                "/api/me/channels", json={"webhook": {"url": hook, "enabled": True}}
            )
            assert r.status_code == 200, r.text
            due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            r = await client.post(
                "/api/tasks",
                json={"title": "call the dentist", "due_at": due},
                headers={"traceparent": CALLER},
            )
            assert r.status_code == 201, r.text
            await asyncio.to_thread(receiver.wait_for, lambda: bool(receiver.requests), 20)
            spans = await until_ended(exporter, "duetime.delivery.attempt")
    provider.shutdown()

    request = one(spans, "POST /api/tasks")
    create = one(spans, "duetime.tasks.create")
    schedule = one(spans, "duetime.jobs.schedule")
    trigger = one(spans, "duetime.job.trigger")
    fire = one(spans, "duetime.reminder.fire")
    delivery = one(spans, "duetime.delivery.attempt")
    trace_id = int(CALLER.split("-")[1], 16)

    # the request continues the caller's trace, and the whole flow stays in it
    assert request.kind is SpanKind.SERVER
    assert request.parent is not None and request.parent.span_id == int(CALLER.split("-")[2], 16)
    for span in (request, create, schedule, trigger, fire, delivery):
        assert span.context.trace_id == trace_id, span.name
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/api/tasks"
    assert request.attributes["http.response.status_code"] == 201

    # request → task → scheduling; the job keeps the scheduling span's context
    assert create.parent is not None and create.parent.span_id == request.context.span_id
    assert schedule.parent is not None and schedule.parent.span_id == create.context.span_id
    assert schedule.kind is SpanKind.PRODUCER
    assert schedule.attributes is not None and schedule.attributes["duetime.jobs.count"] == 1

    # the trigger: a child of that span, and linked to it
    assert trigger.kind is SpanKind.CONSUMER
    assert trigger.parent is not None and trigger.parent.span_id == schedule.context.span_id
    [link] = trigger.links
    assert (link.context.trace_id, link.context.span_id) == (trace_id, schedule.context.span_id)
    assert trigger.attributes is not None
    assert str(trigger.attributes["duetime.job.name"]).startswith(REMINDER_JOB_PREFIX)
    assert trigger.attributes["duetime.job.attempt"] == 1
    assert trigger.attributes["duetime.jobs.backend"] == "embedded"
    assert float(trigger.attributes["duetime.job.lateness_ms"]) >= 0  # type: ignore[arg-type]
    assert trigger.start_time is not None and schedule.end_time is not None
    assert trigger.start_time > schedule.end_time

    # the fire, then the webhook attempt under it
    assert fire.parent is not None and fire.parent.span_id == trigger.context.span_id
    assert fire.attributes is not None and fire.attributes["duetime.reminder.result"] == "delivered"
    assert delivery.kind is SpanKind.CLIENT
    assert delivery.parent is not None and delivery.parent.span_id == fire.context.span_id
    assert delivery.attributes is not None
    assert delivery.attributes["duetime.delivery.channel"] == "webhook"
    assert delivery.attributes["duetime.delivery.attempt"] == 1
    assert delivery.attributes["http.response.status_code"] == 200
    assert delivery.status.status_code is StatusCode.UNSET

    # the receiver got the attempt's context
    [received] = receiver.requests
    assert received.headers["traceparent"] == (
        f"00-{trace_id:032x}-{delivery.context.span_id:016x}-01"
    )

    # no user id, URL or secret in any span
    for span in spans:
        for value in (span.attributes or {}).values():
            text = str(value)
            assert USER not in text and "s3cr3t" not in text and "127.0.0.1" not in text


async def test_the_relay_carries_a_trace_context_through_the_outbox(tmp_path: Path) -> None:
    """The Dapr backend's path: the intent waits in the outbox with its context, and the
    scheduler stores the job with it."""
    provider = TracerProvider()
    tracing = Tracing(provider)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    scheduler = InMemoryJobScheduler()
    try:
        await migrate(engine)
        relay = SchedulingRelay(engine, scheduler)
        with tracing.span("request") as request:
            context = request.get_span_context()
            stored = f"00-{context.trace_id:032x}-{context.span_id:016x}-01 vendor=x"
        intents = [
            Intent("traced", {"dueTime": "1h", "data": 1}, stored),
            Intent("untraced", {"dueTime": "1h", "data": 2}),
        ]
        async with transaction(engine) as tx:
            await relay.write(tx, intents)
        assert [i for _, i in await relay.pending(10)] == intents
        await relay.drain()
        traced = await scheduler._store.get("traced")
        untraced = await scheduler._store.get("untraced")
    finally:
        await engine.dispose()
        provider.shutdown()
    assert traced is not None and traced.trace_context == stored
    assert traced.job.data == 1
    assert untraced is not None and untraced.trace_context is None
