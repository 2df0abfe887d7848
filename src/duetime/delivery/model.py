"""Delivery rules: channels, retry policy and backoff. Pure: no I/O."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

ChannelName = Literal["webhook", "email", "push"]
DeliveryState = Literal["pending", "delivered", "dead"]
CHANNELS: tuple[ChannelName, ...] = ("webhook", "email", "push")

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def check_email(address: str) -> None:
    """Raises ValueError unless `address` is a plain `local@domain.tld` (no display name,
    no whitespace or line breaks: it goes into a mail header)."""
    if len(address) > 254 or not _EMAIL.match(address) or ".." in address:
        raise ValueError(f"email address {address!r} is not a valid address like name@example.com")


@dataclass(frozen=True)
class ChannelSettings:
    """A user's channels. In-app delivery is always on. `webhook_secret` signs webhooks."""

    user_id: str
    webhook_secret: str
    webhook_url: str | None = None
    webhook_enabled: bool = False
    email: str | None = None
    email_enabled: bool = False
    push_enabled: bool = False
    """Web Push to each of the user's registered devices (`duetime.delivery.push`)."""

    def targets(self) -> dict[ChannelName, str]:
        """The external channels a reminder goes to now, with their target."""
        found: dict[ChannelName, str] = {}
        if self.webhook_enabled and self.webhook_url:
            found["webhook"] = self.webhook_url
        if self.email_enabled and self.email:
            found["email"] = self.email
        return found


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` attempts in all; before attempt n+1 wait a random time in
    [0, min(max_delay, base_delay × 2^(n−1))] seconds (exponential backoff, full jitter)."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    attempt_timeout: float = 10.0


def backoff(policy: RetryPolicy, failed_attempts: int, rand: Callable[[], float]) -> float:
    """Seconds to wait after `failed_attempts` (≥ 1) failures; `rand()` is uniform in [0, 1)."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** max(0, failed_attempts - 1))
    return ceiling * rand()


def system_random() -> float:
    return random.SystemRandom().random()


@dataclass(frozen=True)
class Delivery:
    """One reminder occurrence on one channel, as stored."""

    id: str
    notification_id: str
    user_id: str
    channel: ChannelName
    target: str
    event_id: str
    payload: str  # JSON text, byte-stable across attempts
    state: DeliveryState
    attempts: int
    attempt_limit: int
    next_attempt_us: int
    created_us: int
    updated_us: int
    delivered_us: int | None
    last_error: str | None
    replays: int
    trace_context: str | None = None
    """The trace context of the fire that wrote it (`duetime.tracing`), or None."""
    device: str = ""
    """The push subscription it goes to (channel `push`: one delivery per device); ""."""


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    channel: ChannelName
    attempt: int
    status: Literal["delivered", "failed"]
    error: str | None
    http_status: int | None
    started_us: int
    finished_us: int


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to. `permanent` failures are not retried."""

    ok: bool
    error: str | None = None
    http_status: int | None = None
    permanent: bool = False
    retry_after: float | None = None  # seconds the receiver asked us to wait


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for an attempt, with what the channel needs to send it."""

    delivery: Delivery
    secret: str  # the user's current webhook signing secret

    @property
    def attempt(self) -> int:
        return self.delivery.attempts + 1

    def event(self) -> dict[str, Any]:
        """The delivery's CloudEvent, decoded."""
        value: dict[str, Any] = json.loads(self.delivery.payload)
        return value
