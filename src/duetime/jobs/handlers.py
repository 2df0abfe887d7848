"""Routing of triggers to handlers by job-name prefix."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opentelemetry.trace import Span, SpanKind

from duetime.clock import Clock
from duetime.jobs.model import JSON, Answer, JobNotFoundError, Trigger
from duetime.jobs.scope import from_dapr_name
from duetime.tracing import Attributes, Tracing, set_error

if TYPE_CHECKING:
    from duetime.jobs.store import JobStore
from duetime.jobs.port import TriggerHandler

log = logging.getLogger(__name__)


class HandlerRegistry:
    """Longest-prefix routing; `""` is the fallback for every name."""

    def __init__(self) -> None:
        self._handlers: dict[str, TriggerHandler] = {}
        self._by_length: list[str] = []

    def add(self, prefix: str, handler: TriggerHandler) -> None:
        self._handlers[prefix] = handler
        self._by_length = sorted(self._handlers, key=len, reverse=True)

    def resolve(self, name: str) -> TriggerHandler | None:
        for prefix in self._by_length:
            if name.startswith(prefix):
                return self._handlers[prefix]
        return None

    async def deliver(self, trigger: Trigger) -> Answer:
        """Run the handler that owns `trigger.name` and return its answer; `NO_HANDLER` if
        none does. Handler errors propagate."""
        handler = self.resolve(trigger.name)
        if handler is None:
            log.warning("no handler for job %r; trigger dropped", trigger.name)
            return Answer.NO_HANDLER
        return await handler(trigger) or Answer.DELIVERED


class DirectTriggers:
    """Triggers posted to duetime's `POST /job/{name}` while the embedded engine runs (by a
    Dapr sidecar pointed at it, say): straight to the handlers, once, scheduled now."""

    def __init__(self, handlers: HandlerRegistry, clock: Clock, namespace: str = "default") -> None:
        self._handlers = handlers
        self._clock = clock
        self._namespace = namespace

    async def receive(self, name: str, data: JSON) -> bool:
        now = self._clock.now()
        key = from_dapr_name(name, self._namespace)
        trigger = Trigger(key, data, scheduled_at=now, fired_at=now)
        return await self._handlers.deliver(trigger) is not Answer.NO_HANDLER


def describe_error(exc: BaseException, limit: int = 2000) -> str:
    """A storable one-line description: no NUL (PostgreSQL refuses it), no lone surrogates."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


async def replay_dead_letter(
    store: JobStore, handlers: HandlerRegistry, dead_letter_id: str, now: datetime
) -> None:
    """Deliver a dead letter's trigger once (`JobScheduler.replay`): removed on success;
    on failure kept with the new error and attempt count, and the error raised."""
    dead = await store.get_dead_letter(dead_letter_id)
    if dead is None:
        raise JobNotFoundError(f"no dead letter {dead_letter_id!r}")
    trigger = Trigger(
        name=dead.name,
        data=dead.data,
        scheduled_at=dead.scheduled_at,
        fired_at=now,
        attempt=dead.attempts + 1,
    )
    try:
        await handlers.deliver(trigger)
    except Exception as exc:
        await store.put_dead_letter(
            replace(dead, attempts=dead.attempts + 1, error=describe_error(exc))
        )
        raise
    await store.delete_dead_letter(dead_letter_id)


@contextmanager
def trigger_span(
    tracing: Tracing, trigger: Trigger, trace_context: str | None, backend: str
) -> Iterator[Span]:
    """The span of one attempt of `trigger`: a child of the span its job was scheduled in
    (`trace_context`), and linked to it; without one, of the current span."""
    attributes: Attributes = {
        "duetime.job.name": trigger.name,
        "duetime.job.attempt": trigger.attempt,
        "duetime.job.lateness_ms": trigger.lateness / timedelta(milliseconds=1),
        "duetime.job.late": trigger.late,
        "duetime.jobs.backend": backend,
    }
    with tracing.span(
        "duetime.job.trigger",
        attributes,
        kind=SpanKind.CONSUMER,
        parent=trace_context,
        link=True,
    ) as span:
        yield span


def trigger_ended(span: Span, answer: Answer | None, error: str | None) -> None:
    if error is not None:
        set_error(span, error)
    elif answer is not None:
        span.set_attribute("duetime.job.answer", answer.value)
