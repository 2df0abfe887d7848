"""Dapr pub/sub, the app side: the subscriptions daprd asks for (`GET /dapr/subscribe`), the
routes it delivers `reminders` events to, and the operator's view of the dead-letter topic.

daprd's status contract: `{"status": "SUCCESS"}` the event is handled; `"RETRY"` deliver it
again (the component's resiliency policy decides how often; then it goes to the
dead-letter topic); `"DROP"` forget it (no dead letter). duetime answers RETRY for an event
it cannot parse too: that is how a poison event reaches the dead-letter topic, where an
operator sees it.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from duetime.api.auth import require_api_token, require_app_token
from duetime.api.deps import BodyDep
from duetime.api.errors import DEAD_LETTER_NOT_FOUND, REPLAY_FAILED, ApiError, describe_exception
from duetime.delivery.subscriber import DUE_TYPE, FanOut, PoisonEvent
from duetime.events.dead_letters import DeadEvent, SqlEventDeadLetters
from duetime.events.model import REMINDER_TOPIC, PublishedEvent
from duetime.events.port import EventPublisher
from duetime.timefmt import format_rfc3339, from_micros

log = logging.getLogger(__name__)

Status = Literal["SUCCESS", "RETRY", "DROP"]
DUE_ROUTE = "/dapr/pubsub/reminder-due"
OTHER_ROUTE = "/dapr/pubsub/reminders"
DEAD_ROUTE = "/dapr/pubsub/dead-letters"


def _status(status: Status) -> JSONResponse:
    return JSONResponse({"status": status})


def _envelope(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def subscriptions(pubsub: str, dead_letter_topic: str) -> list[dict[str, Any]]:
    """`reminder.due` to the fan-out, the other `reminders` events to a route that takes
    them, and the dead-letter topic to the operator's list."""
    return [
        {
            "pubsubname": pubsub,
            "topic": REMINDER_TOPIC,
            "routes": {
                "rules": [{"match": f'event.type == "{DUE_TYPE}"', "path": DUE_ROUTE}],
                "default": OTHER_ROUTE,
            },
            "deadLetterTopic": dead_letter_topic,
        },
        {"pubsubname": pubsub, "topic": dead_letter_topic, "route": DEAD_ROUTE},
    ]


def subscriber_router() -> APIRouter:
    """What daprd calls; behind the app token when one is set."""
    router = APIRouter(dependencies=[Depends(require_app_token)], tags=["pub/sub (from Dapr)"])

    @router.get("/dapr/subscribe")
    async def subscribe(request: Request) -> JSONResponse:
        """The subscriptions of this process: none unless it runs the notifier on Dapr
        pub/sub."""
        runtime = request.app.state.runtime
        if runtime.subscriber is None:
            return JSONResponse([])
        settings = runtime.settings
        return JSONResponse(subscriptions(settings.pubsub_name, settings.dead_letter_topic))

    @router.post(DUE_ROUTE)
    async def reminder_due(request: Request, raw: BodyDep) -> JSONResponse:
        """A `reminder.due`: its deliveries are written (once, however often it arrives)."""
        subscriber: FanOut | None = request.app.state.runtime.subscriber
        if subscriber is None:
            return _status("RETRY")  # a sidecar sent it to a process without the notifier
        envelope = _envelope(raw)
        try:
            known = await subscriber.receive(envelope)
        except PoisonEvent as exc:
            event_id = envelope.get("id") if isinstance(envelope, dict) else None
            log.warning("event %r cannot be delivered (%s): retrying it", event_id, exc)
            return _status("RETRY")
        except Exception as exc:
            log.warning("reminder event not taken (%s): retrying it", describe_exception(exc))
            return _status("RETRY")
        if not known:
            log.info("reminder event %r: its notification is gone; dropped", envelope.get("id"))
            return _status("DROP")
        return _status("SUCCESS")

    @router.post(OTHER_ROUTE)
    async def other_reminder_event(raw: BodyDep) -> JSONResponse:
        """`reminder.delivered` and `reminder.failed`: nothing for the notifier to do."""
        return _status("SUCCESS")

    @router.post(DEAD_ROUTE)
    async def dead_letter(request: Request, raw: BodyDep) -> JSONResponse:
        """An event the retries did not get through: kept for an operator."""
        runtime = request.app.state.runtime
        envelope = _envelope(raw)
        body = envelope if isinstance(envelope, dict) else {"data": raw.decode("utf-8", "replace")}
        settings = runtime.settings
        topic = body.get("topic")
        if not isinstance(topic, str) or topic == settings.dead_letter_topic:
            topic = REMINDER_TOPIC
        try:
            await runtime.event_dead_letters.record(
                settings.pubsub_name, topic, body, runtime.clock.now_micros()
            )
        except Exception as exc:
            log.warning("dead letter not recorded (%s): retrying it", describe_exception(exc))
            return _status("RETRY")
        log.warning("event %r reached the dead-letter topic", body.get("id"))
        return _status("SUCCESS")

    return router


class DeadEventOut(BaseModel):
    id: str
    eventId: str
    pubsub: str
    topic: str
    type: str | None
    event: dict[str, Any]
    firstTime: str
    lastTime: str
    times: int
    replays: int
    replayedTime: str | None

    @classmethod
    def of(cls, d: DeadEvent) -> DeadEventOut:
        return cls(
            id=d.id,
            eventId=d.event_id,
            pubsub=d.pubsub,
            topic=d.topic,
            type=d.type,
            event=d.body,
            firstTime=format_rfc3339(from_micros(d.first_us)),
            lastTime=format_rfc3339(from_micros(d.last_us)),
            times=d.times,
            replays=d.replays,
            replayedTime=None
            if d.replayed_us is None
            else format_rfc3339(from_micros(d.replayed_us)),
        )


def _time(us: int | None) -> str | None:
    return None if us is None else format_rfc3339(from_micros(us))


class DeadEventPage(BaseModel):
    deadLetters: list[DeadEventOut]


def dead_events_router() -> APIRouter:
    """The operator's routes, behind the jobs API's token."""
    router = APIRouter(
        prefix="/v1.0/pubsub/deadletters",
        dependencies=[Depends(require_api_token)],
        tags=["pub/sub dead letters (duetime)"],
    )

    def store(request: Request) -> SqlEventDeadLetters:
        found: SqlEventDeadLetters = request.app.state.runtime.event_dead_letters
        return found

    @router.get("")
    async def list_dead_events(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        replayed: bool = False,
    ) -> DeadEventPage:
        """Events on the dead-letter topic waiting for an operator, oldest first
        (`replayed=true`: those replayed since too)."""
        found = await store(request).page(limit=limit, include_replayed=replayed)
        return DeadEventPage(deadLetters=[DeadEventOut.of(d) for d in found])

    @router.post("/{dead_id}/replay")
    async def replay_dead_event(request: Request, dead_id: str) -> DeadEventOut:
        """Publish the event again, as it was, to the topic it was first published on.
        502 `DUETIME_REPLAY_FAILED` when the broker does not take it (nothing changes)."""
        runtime = request.app.state.runtime
        dead = await store(request).get(dead_id)
        if dead is None:
            raise _not_found(dead_id)
        publisher: EventPublisher = runtime.broker
        body = {k: v for k, v in dead.body.items() if k not in _SIDECAR_KEYS}
        try:
            await publisher.publish([PublishedEvent(0, "", dead.topic, body)])
        except Exception as exc:
            message = f"the broker did not take the event: {describe_exception(exc)}"
            raise ApiError(502, REPLAY_FAILED, message) from None
        await store(request).mark_replayed(dead_id, runtime.clock.now_micros())
        replayed = await store(request).get(dead_id)
        assert replayed is not None
        return DeadEventOut.of(replayed)

    @router.delete("/{dead_id}", status_code=204)
    async def discard_dead_event(request: Request, dead_id: str) -> Response:
        """Forget the event."""
        if not await store(request).discard(dead_id):
            raise _not_found(dead_id)
        return Response(status_code=204)

    return router


_SIDECAR_KEYS = {"topic", "pubsubname", "traceid", "traceparent", "tracestate"}


def _not_found(dead_id: str) -> ApiError:
    return ApiError(404, DEAD_LETTER_NOT_FOUND, f"no dead letter {dead_id!r}")
