"""Routing of triggers to handlers by job-name prefix."""

from __future__ import annotations

import logging

from duetime.clock import Clock
from duetime.jobs.model import JSON, Trigger
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

    async def deliver(self, trigger: Trigger) -> bool:
        """Run the handler that owns `trigger.name`; False if none does. Handler errors
        propagate."""
        handler = self.resolve(trigger.name)
        if handler is None:
            log.warning("no handler for job %r; trigger dropped", trigger.name)
            return False
        await handler(trigger)
        return True


class DirectTriggers:
    """Triggers posted to duetime's `POST /job/{name}` while the embedded engine runs (by a
    Dapr sidecar pointed at it, say): straight to the handlers, once, scheduled now."""

    def __init__(self, handlers: HandlerRegistry, clock: Clock) -> None:
        self._handlers = handlers
        self._clock = clock

    async def receive(self, name: str, data: JSON) -> bool:
        now = self._clock.now()
        return await self._handlers.deliver(Trigger(name, data, scheduled_at=now, fired_at=now))
