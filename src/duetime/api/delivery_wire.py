"""Request and response bodies of the channel, delivery and event API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from duetime.api.task_wire import _Strict
from duetime.delivery.model import Attempt, ChannelSettings, Delivery
from duetime.delivery.service import ChannelInput
from duetime.events.model import PublishedEvent
from duetime.timefmt import format_rfc3339, from_micros

Url = Annotated[str, StringConstraints(max_length=2048)]
Address = Annotated[str, StringConstraints(max_length=254)]


def _at(us: int | None) -> str | None:
    return None if us is None else format_rfc3339(from_micros(us))


class WebhookIn(_Strict):
    url: Url | None = None
    enabled: bool = False


class EmailIn(_Strict):
    address: Address | None = None
    enabled: bool = False


class PushIn(_Strict):
    enabled: bool = False


class ChannelsIn(_Strict):
    """The whole channel configuration; an omitted channel is cleared and off. In-app
    delivery is always on. The webhook secret is kept (rotate it with its own route)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": {"address": "alice@example.com"}}]}
    )

    webhook: WebhookIn = WebhookIn()
    email: EmailIn = EmailIn()
    push: PushIn = PushIn()

    def to_input(self) -> ChannelInput:
        return ChannelInput(
            webhook_url=self.webhook.url,
            webhook_enabled=self.webhook.enabled,
            email=self.email.address,
            email_enabled=self.email.enabled,
            push_enabled=self.push.enabled,
        )


class InAppOut(BaseModel):
    enabled: Literal[True] = True
    stream: str = "/api/notifications/stream"


class WebhookOut(BaseModel):
    url: str | None
    enabled: bool
    secret: str
    """Signs every webhook (`duetime-signature`); see docs/howto/webhooks.md."""


class EmailOut(BaseModel):
    address: str | None
    enabled: bool
    available: bool
    """Whether this server has an SMTP server configured."""


class PushOut(BaseModel):
    enabled: bool
    devices: str = "/api/push/subscriptions"
    """Where the devices that get pushes are registered (docs/howto/browser-push.md)."""


class ChannelsOut(BaseModel):
    in_app: InAppOut
    webhook: WebhookOut
    email: EmailOut
    push: PushOut

    @classmethod
    def of(cls, s: ChannelSettings, *, email_available: bool) -> ChannelsOut:
        return cls(
            in_app=InAppOut(),
            webhook=WebhookOut(
                url=s.webhook_url, enabled=s.webhook_enabled, secret=s.webhook_secret
            ),
            email=EmailOut(address=s.email, enabled=s.email_enabled, available=email_available),
            push=PushOut(enabled=s.push_enabled),
        )


class AttemptOut(BaseModel):
    attempt: int
    status: Literal["delivered", "failed"]
    error: str | None
    http_status: int | None
    started_at: str
    finished_at: str

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(
            attempt=a.attempt,
            status=a.status,
            error=a.error,
            http_status=a.http_status,
            started_at=format_rfc3339(from_micros(a.started_us)),
            finished_at=format_rfc3339(from_micros(a.finished_us)),
        )


class DeliveryOut(BaseModel):
    id: str
    notification_id: str
    event_id: str
    channel: Literal["webhook", "email", "push"]
    target: str
    device: str | None
    """The push subscription (`/api/push/subscriptions`) of a `push` delivery, else null."""
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    attempt_limit: int
    next_attempt_at: str | None
    created_at: str
    updated_at: str
    delivered_at: str | None
    last_error: str | None
    replays: int
    history: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery, attempts: list[Attempt]) -> DeliveryOut:
        return cls(
            id=d.id,
            notification_id=d.notification_id,
            event_id=d.event_id,
            channel=d.channel,
            target=d.target,
            device=d.device or None,
            state=d.state,
            attempts=d.attempts,
            attempt_limit=d.attempt_limit,
            next_attempt_at=_at(d.next_attempt_us) if d.state == "pending" else None,
            created_at=format_rfc3339(from_micros(d.created_us)),
            updated_at=format_rfc3339(from_micros(d.updated_us)),
            delivered_at=_at(d.delivered_us),
            last_error=d.last_error,
            replays=d.replays,
            history=[AttemptOut.of(a) for a in attempts],
        )


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None


class EventOut(BaseModel):
    seq: int
    topic: str
    event: dict[str, Any]
    """The CloudEvent 1.0 (JSON format)."""

    @classmethod
    def of(cls, e: PublishedEvent) -> EventOut:
        return cls(seq=e.seq, topic=e.topic, event=e.body)


class EventPage(BaseModel):
    events: list[EventOut]
    cursor: int
    """Pass back as `after` for the next events (the last `seq` seen)."""
