"""duetime.tracing: off unless the OTEL_ variables ask, the OTLP exporter they configure, the
stored trace context, and the trigger spans of the embedded engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from duetime import tracing
from duetime.jobs import Job
from duetime.testing import InMemoryJobScheduler, RecordingHandler
from duetime.tracing import Tracing, current, from_environment, inject, restore, wanted_exporters

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def no_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def spans() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider), exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def ended(exporter: InMemorySpanExporter, name: str, count: int) -> None:
    """Wait until `count` spans named `name` ended (a trigger's span ends after its handler
    returned)."""
    for _ in range(250):
        if len(named(exporter, name)) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} {name} spans did not end in 5 s")


# -- configuration ---------------------------------------------------------------------------


def test_tracing_is_off_without_otel_variables() -> None:
    assert wanted_exporters() == []
    assert from_environment() is None
    tracing.configure.cache_clear()
    try:
        assert tracing.configure() is None
    finally:
        tracing.configure.cache_clear()
    # nothing was set up: the API's no-op provider, no valid span anywhere
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert current() is None


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}, []),
        ({"OTEL_SERVICE_NAME": "reminders"}, []),
    ],
)
def test_the_standard_variables_choose_the_exporters(
    environ: dict[str, str], wanted: list[str]
) -> None:
    assert wanted_exporters(environ) == wanted


def test_the_otlp_endpoint_configures_an_http_exporter_behind_a_batch_processor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318")
    found = from_environment()
    assert found is not None
    try:
        [exporter] = found.exporters
        assert isinstance(exporter, OTLPSpanExporter)
        assert exporter._endpoint == "http://collector.example:4318/v1/traces"
        [processor] = found.processors
        assert isinstance(processor, BatchSpanProcessor)
        provider = found.provider
        assert isinstance(provider, TracerProvider)
        assert provider.resource.attributes["service.name"] == "duetime"
    finally:
        found.provider.shutdown()  # type: ignore[attr-defined]  # nothing was exported


def test_the_traces_endpoint_and_the_service_name_are_the_standard_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://otel.example/in")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "reminders-eu")
    found = from_environment()
    assert found is not None
    try:
        [exporter] = found.exporters
        assert isinstance(exporter, OTLPSpanExporter)
        assert exporter._endpoint == "https://otel.example/in"
        provider = found.provider
        assert isinstance(provider, TracerProvider)
        assert provider.resource.attributes["service.name"] == "reminders-eu"
    finally:
        found.provider.shutdown()  # type: ignore[attr-defined]


def test_an_exporter_duetime_lacks_is_a_warning_not_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    assert from_environment() is None
    assert "OTEL_TRACES_EXPORTER=zipkin" in caplog.text


# -- the stored context ----------------------------------------------------------------------


def test_the_stored_context_is_the_traceparent_and_the_tracestate(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracer, _ = spans
    with tracer.span("parent", parent=f"{TRACEPARENT} vendor=a,other=b"):
        text = current()
        headers: dict[str, str] = {}
        inject(headers)
    assert text is not None
    traceparent, tracestate = text.split(" ")
    assert traceparent.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert traceparent != TRACEPARENT  # the child's span id
    assert tracestate == "vendor=a,other=b"
    assert headers == {"traceparent": traceparent, "tracestate": tracestate}
    restored = trace.get_current_span(restore(text)).get_span_context()
    assert restored.is_remote and f"{restored.span_id:016x}" == traceparent.split("-")[2]


def test_a_bad_stored_context_starts_a_trace_of_its_own(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    assert not trace.get_current_span(restore("00-nonsense")).get_span_context().is_valid
    with tracer.span("alone", parent="00-nonsense", link=True):
        pass
    [span] = exporter.get_finished_spans()
    assert span.parent is None and list(span.links) == []


def test_inject_adds_nothing_outside_a_span() -> None:
    headers: dict[str, str] = {}
    inject(headers)
    assert headers == {}


# -- the embedded engine's trigger spans -----------------------------------------------------


async def test_each_attempt_is_a_span_linked_to_the_span_that_scheduled_the_job(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    scheduler = InMemoryJobScheduler()
    scheduler._tracing = tracer
    handler = RecordingHandler(fail=lambda t: t.attempt == 1)
    scheduler.add_handler("", handler)
    await scheduler.start()
    try:
        with tracer.span("request") as request:
            await scheduler.schedule(Job("j", due_time="0s"))
        await handler.wait_for(2)
        await ended(exporter, "duetime.job.trigger", 2)
    finally:
        await scheduler.stop()
    first, second = named(exporter, "duetime.job.trigger")
    scheduled = request.get_span_context()
    for span, attempt in ((first, 1), (second, 2)):
        assert span.kind is SpanKind.CONSUMER
        assert span.context.trace_id == scheduled.trace_id
        assert span.parent is not None and span.parent.span_id == scheduled.span_id
        [link] = span.links
        assert link.context.span_id == scheduled.span_id
        assert span.attributes is not None
        assert span.attributes["duetime.job.name"] == "j"
        assert span.attributes["duetime.job.attempt"] == attempt
        assert span.attributes["duetime.jobs.backend"] == "embedded"
        assert float(span.attributes["duetime.job.lateness_ms"]) >= 0  # type: ignore[arg-type]
    assert first.status.status_code is StatusCode.ERROR
    assert "handler refused" in (first.status.description or "")
    assert second.status.status_code is StatusCode.UNSET


async def test_a_job_scheduled_outside_any_span_has_no_context_and_its_trigger_is_a_root(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    scheduler = InMemoryJobScheduler()
    scheduler._tracing = tracer
    handler = RecordingHandler()
    scheduler.add_handler("", handler)
    await scheduler.start()
    try:
        await scheduler.schedule(Job("j", due_time="0s"))
        await handler.wait_for(1)
        await ended(exporter, "duetime.job.trigger", 1)
    finally:
        await scheduler.stop()
    [span] = named(exporter, "duetime.job.trigger")
    assert span.parent is None and list(span.links) == []


async def test_without_tracing_the_engine_makes_no_span_but_keeps_the_context(
    spans: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    scheduler = InMemoryJobScheduler()  # tracing off in the engine
    await scheduler.start()
    try:
        with tracer.span("request") as request:
            await scheduler.schedule(Job("later", due_time="1h"))
        row = await scheduler._store.get("later")
    finally:
        await scheduler.stop()
    assert row is not None and row.trace_context is not None
    assert row.trace_context.split("-")[2] == f"{request.get_span_context().span_id:016x}"
    assert [s.name for s in exporter.get_finished_spans()] == ["request"]
