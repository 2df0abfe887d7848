"""OpenTelemetry traces: one trace from a task request, through the reminder jobs it schedules,
to each trigger, the fire and every channel delivery.

Off unless the standard variables ask for it: `OTEL_TRACES_EXPORTER` (`otlp`, `console`,
`none`), or an endpoint in `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
(which means `otlp`); `OTEL_SDK_DISABLED=true` turns it off whatever else is set. OTLP goes
over HTTP (`http/protobuf`, the pure-Python exporter: no second grpcio beside dapr's); the
exporter, the batch processor and the sampler read their own `OTEL_*` variables. The service
is `duetime` unless `OTEL_SERVICE_NAME` (or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`)
names it. See docs/reference/tracing.md for the spans, their attributes and links.

The composition root (`duetime.bootstrap`) makes one `Tracing` per process (`configure`) and
hands it to each component that makes spans; where tracing is off they get None and test
`is None`, so the API's no-op tracer is not even called.

A job stores the trace context it was scheduled in (`StoredJob.trace_context`), a delivery
the context of the fire that wrote it (`Delivery.trace_context`): the W3C `traceparent`, then
a space and the `tracestate` when there is one (`current`, `restore`).

Cost, measured on the 2-core development machine while it was busy (it ran a trigger in
≈ 110–180 µs end to end then, where the ≈ 60 µs figure elsewhere was measured), base commit
against this change, best of several runs (`timeit` / `perf_counter`, CPython 3.11):
- tracing off, per trigger: the `is None` tests (engine, task service, fire batch) ≈ 0.05 µs
  each; the job's `trace_context` column and field ≈ +1.1 µs per job row read
  (`SqlJobStore` row → `StoredJob`: 15.2 → 16.4 µs here), nothing measurable on a write
  (NULL); `on_reminder` is called directly, without a wrapper coroutine (that would be
  ≈ 0.23 µs). Together ≈ 1 % of a trigger here. End to end, 4,000 triggers on SQLite: within
  the run-to-run noise (best 111–162 µs per trigger before, 121–148 µs after).
- tracing on (SDK, batch processor): ≈ 45 µs per span here, a
  trigger's span (stored parent restored, linked) ≈ 1.5× that; ≈ 3 spans per reminder
  trigger (trigger, fire, each delivery attempt).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from duetime import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_EXPORTERS = ("otlp", "console")

Attributes = Mapping[str, str | bool | int | float]


class Tracing:
    """duetime's spans, from one tracer of `provider`. `exporters` and `processors` are
    what `configure` set up (empty when a caller brought its own provider)."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        exporters: tuple[SpanExporter, ...] = (),
        processors: tuple[SpanProcessor, ...] = (),
    ) -> None:
        self.provider = provider
        self.exporters = exporters
        self.processors = processors
        self._tracer = provider.get_tracer("duetime", __version__)

    def span(
        self,
        name: str,
        attributes: Attributes | None = None,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        parent: str | None = None,
        link: bool = False,
    ) -> AbstractContextManager[Span]:
        """A span made current for the block. `parent`, a stored trace context (`current`),
        is its parent instead of the current span; with `link` it is also linked to it (a
        trigger and the span that scheduled its job). An exception leaving the block is
        recorded and sets the span's status to error."""
        context: Context | None = None
        links: list[Link] | None = None
        if parent is not None:
            context = restore(parent)
            if link:
                linked = trace.get_current_span(context).get_span_context()
                links = [Link(linked)] if linked.is_valid else None
        return self._tracer.start_as_current_span(
            name, context=context, kind=kind, attributes=attributes, links=links
        )


def current() -> str | None:
    """The current span's context as stored: `traceparent[ tracestate]`; None when there is
    no valid span (tracing off, or outside any span)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    text = (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{span_context.trace_flags:02x}"
    )
    state = span_context.trace_state
    return f"{text} {state.to_header()}" if state else text


def restore(text: str) -> Context:
    """A context whose (remote) span is the one `text` (from `current`, or an incoming
    `traceparent`) names; an empty one when `text` is not a valid traceparent."""
    traceparent, _, tracestate = text.partition(" ")
    parts = traceparent.split("-")
    if len(parts) == 4 and parts[0] == "00" and list(map(len, parts)) == [2, 32, 16, 2]:
        # what duetime stores: read directly, ≈ 3× faster than the propagator's regex
        try:
            trace_id, span_id, flags = (int(p, 16) for p in parts[1:])
        except ValueError:
            return Context()
        span_context = trace.SpanContext(
            trace_id,
            span_id,
            is_remote=True,
            trace_flags=trace.TraceFlags(flags),
            trace_state=trace.TraceState.from_header([tracestate]) if tracestate else None,
        )
        if not span_context.is_valid:
            return Context()
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context), Context())
    carrier = {"traceparent": traceparent}  # another version: the propagator's rules
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier, context=Context())


def from_headers(traceparent: str | None, tracestate: str | None) -> str | None:
    """An incoming request's trace context, as `restore` reads it."""
    if not traceparent:
        return None
    return f"{traceparent.strip()} {tracestate.strip()}" if tracestate else traceparent.strip()


def inject(headers: dict[str, str]) -> None:
    """Add the current span's `traceparent` (and `tracestate`, if any) to `headers`."""
    text = current()
    if text is not None:
        traceparent, _, tracestate = text.partition(" ")
        headers["traceparent"] = traceparent
        if tracestate:
            headers["tracestate"] = tracestate


def attached(text: str | None) -> AbstractContextManager[None]:
    """Make the stored context `text` current for the block (nothing when None): work done
    later on behalf of a request (the scheduling relay) is stored with the request's trace."""
    return nullcontext() if text is None else _attached(text)


@contextmanager
def _attached(text: str) -> Iterator[None]:
    token = otel_context.attach(restore(text))
    try:
        yield
    finally:
        otel_context.detach(token)


def wanted_exporters(environ: Mapping[str, str] | None = None) -> list[str]:
    """The span exporters the `OTEL_*` variables ask for; empty: tracing is off."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        names = [n.strip() for n in named.split(",") if n.strip()]
        return [] if "none" in names else list(dict.fromkeys(names))
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return ["otlp"]
    return []


def from_environment() -> Tracing | None:
    """A `Tracing` on an SDK tracer provider with the exporters the `OTEL_*` variables ask
    for, each behind a batch processor; None when they ask for none. Reads `os.environ`
    (as the SDK's exporter and sampler do)."""
    names = wanted_exporters()
    if not names:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "duetime"}))
    exporters = tuple(e for e in (_exporter(name) for name in names) if e is not None)
    if not exporters:
        return None
    provider = SdkTracerProvider(resource=resource)
    processors = tuple(BatchSpanProcessor(e) for e in exporters)
    for processor in processors:
        provider.add_span_processor(processor)
    return Tracing(provider, exporters=exporters, processors=processors)


def _exporter(name: str) -> SpanExporter | None:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        log.warning(
            "OTEL_TRACES_EXPORTER=%s is not one duetime has (%s); no spans go there",
            name,
            ", ".join(_EXPORTERS),
        )
        return None
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol.strip() != "http/protobuf":
        log.warning(
            "OTEL_EXPORTER_OTLP_PROTOCOL=%s: duetime exports OTLP over http/protobuf only "
            "(a collector's port 4318)",
            protocol,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


@functools.cache
def configure() -> Tracing | None:
    """This process's tracing, set up from the environment the first time it is asked for
    (and made the global tracer provider, for any library that asks OpenTelemetry for one)."""
    tracing = from_environment()
    if tracing is not None:
        trace.set_tracer_provider(tracing.provider)
        names = ", ".join(type(e).__name__ for e in tracing.exporters)
        log.info("tracing: spans exported with %s", names)
    return tracing


def set_error(span: Span, description: str) -> None:
    span.set_status(trace.Status(trace.StatusCode.ERROR, description[:1000]))
