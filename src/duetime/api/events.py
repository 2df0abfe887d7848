"""The event log (`GET /api/events`) and the live in-app stream
(`GET /api/notifications/stream`, Server-Sent Events), per user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from duetime.api.delivery_wire import EventOut, EventPage
from duetime.api.users import CurrentUser
from duetime.delivery.hub import STREAM_TYPES, NotificationHub, Subscription
from duetime.events.model import PublishedEvent
from duetime.events.store import SqlEventStore

_PAGE = 500
_MAX_SEQ = 2**62


def _log(request: Request) -> SqlEventStore:
    store: SqlEventStore = request.app.state.runtime.events
    return store


def _sse(event: PublishedEvent) -> str:
    data = json.dumps(event.body.get("data", {}), separators=(",", ":"))
    return f"id: {event.seq}\nevent: notification\ndata: {data}\n\n"


def _cursor(last_event_id: str | None) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    text = last_event_id.strip()
    if not text.isdigit() or int(text) > _MAX_SEQ:
        raise HTTPException(
            422, detail=f"Last-Event-ID {last_event_id!r} is not an id this stream sent"
        )
    return int(text)


async def _stream(
    log: SqlEventStore,
    hub: NotificationHub,
    sub: Subscription,
    cursor: int | None,
    heartbeat: float,
) -> AsyncIterator[str]:
    try:
        yield "retry: 2000\n: connected\n\n"
        if cursor is None:
            cursor = await log.last_seq()  # live from now
            # an id without data sets the client's Last-Event-ID and dispatches nothing: a
            # browser that loses the connection before its first event still resumes here
            yield f"id: {cursor}\n\n"
        else:
            async for chunk in _backlog(log, sub.user_id, cursor):
                cursor = int(chunk[0])
                yield chunk[1]
        while not sub.closed:
            if sub.lagged:  # the queue overflowed: read what was missed from the log
                sub.lagged = False
                async for chunk in _backlog(log, sub.user_id, cursor):
                    cursor = int(chunk[0])
                    yield chunk[1]
            try:
                event = sub.queue.get_nowait()
            except asyncio.QueueEmpty:
                sub.changed.clear()
                if sub.queue.empty() and not sub.lagged and not sub.closed:
                    try:
                        async with asyncio.timeout(heartbeat):
                            await sub.changed.wait()
                    except TimeoutError:
                        yield ": heartbeat\n\n"
                continue
            if event.seq > cursor:
                cursor = event.seq
                yield _sse(event)
    finally:
        hub.unsubscribe(sub)


async def _backlog(log: SqlEventStore, user_id: str, after: int) -> AsyncIterator[tuple[int, str]]:
    while True:
        found = await log.read(user_id, after=after, limit=_PAGE, types=STREAM_TYPES)
        for event in found:
            after = event.seq
            yield event.seq, _sse(event)
        if len(found) < _PAGE:
            return


def events_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["events"])

    @router.get("/events")
    async def list_events(
        request: Request,
        user: CurrentUser,
        after: Annotated[int, Query(ge=0, le=_MAX_SEQ)] = 0,
        topic: Literal["task-events", "reminders"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> EventPage:
        """Your published events (CloudEvents 1.0), oldest first, after the cursor `after`
        (a `seq`). Poll with the returned `cursor` to follow the log."""
        found = await _log(request).read(user, after=after, limit=limit, topic=topic)
        return EventPage(
            events=[EventOut.of(e) for e in found], cursor=found[-1].seq if found else after
        )

    @router.get(
        "/notifications/stream",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(
        request: Request,
        user: CurrentUser,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Your notifications as Server-Sent Events (`event: notification`, `id:` a
        cursor). Reconnect with `Last-Event-ID` to get what you missed, then live ones.
        A comment line is sent every `DUETIME_SSE_HEARTBEAT` seconds."""
        cursor = _cursor(last_event_id)
        runtime = request.app.state.runtime
        if cursor is not None and cursor > await runtime.events.last_seq():
            raise HTTPException(
                422, detail=f"Last-Event-ID {last_event_id!r} is not an id this stream sent"
            )
        hub: NotificationHub = runtime.hub
        sub = hub.subscribe(user)  # before reading the log: nothing falls in between
        body = _stream(runtime.events, hub, sub, cursor, runtime.settings.sse_heartbeat)
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return router
