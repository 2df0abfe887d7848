"""Dapr's publish API, served by the embedded broker: `POST /v1.0/publish/{pubsub}/{topic}`
and `POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}`.

As daprd 1.16: 204 with no body once the event is stored; `metadata.<key>=<value>` query
parameters are the publish metadata (`rawPayload`, `ttlInSeconds`, `cloudevent.*`); the
caller's `traceparent`/`tracestate` headers go into the envelope. The caller is identified
as for the Jobs API (`dapr-api-token` or bearer token, `dapr-app-id`); its app id is the
CloudEvent `source`. Errors carry daprd's codes; where daprd answers 500 for the client's
mistake (a malformed CloudEvent, a body over 4 MiB) duetime answers 400 and 413.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from duetime.api.auth import API_TOKEN_HEADER, caller_app
from duetime.api.deps import read_limited
from duetime.api.errors import ApiError, responses
from duetime.sidecar.apps import APP_ID_HEADER, App
from duetime.sidecar.pubsub import (
    MAX_BODY_BYTES,
    BulkEntry,
    EmbeddedPubSub,
    PubSubError,
    PubSubRequestError,
    event_bytes,
)

_PREFIX = "metadata."


def _broker(request: Request) -> EmbeddedPubSub:
    broker: EmbeddedPubSub | None = getattr(request.app.state.runtime, "pubsub", None)
    if broker is None:
        raise ApiError(400, "ERR_PUBSUB_NOT_CONFIGURED", "pubsub is not configured")
    return broker


async def _caller(request: Request) -> App:
    """The publishing app, by `duetime.api.auth.caller_app`'s rules, with the headers read
    here (FastAPI's security dependencies cost more than the publish itself)."""
    headers = request.headers
    bearer = None
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials.strip())
    return await caller_app(
        request,
        request.app.state.settings,
        headers.get(API_TOKEN_HEADER),
        bearer,
        headers.get(APP_ID_HEADER),
    )


def _metadata(request: Request) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith(_PREFIX):
            found.setdefault(key[len(_PREFIX) :], value)  # the first, as daprd
    return found


async def _body(request: Request, pubsub: str, topic: str) -> bytes:
    too_large = ApiError(
        413,
        "ERR_PUBSUB_PUBLISH_MESSAGE",
        f"error when publishing to topic {topic} in pubsub {pubsub}: "
        f"the body is larger than the {MAX_BODY_BYTES} byte limit",
    )
    return await read_limited(request, too_large)


def _api_error(exc: PubSubError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def _entries(raw: bytes, pubsub: str, topic: str) -> list[BulkEntry]:
    def bad(why: str) -> PubSubRequestError:
        return PubSubRequestError(
            f"error when unmarshaling the request for topic {topic} pubsub {pubsub}: {why}",
            code="ERR_PUBSUB_EVENTS_SER",
        )

    try:
        decoded: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"not valid JSON: {exc}") from None
    if not isinstance(decoded, list):
        raise bad("the body must be a JSON array of entries")
    entries = []
    for item in decoded:
        if not isinstance(item, dict):
            raise bad("each entry must be a JSON object")
        content_type = item.get("contentType") or ""
        metadata = item.get("metadata") or {}
        entry_id = item.get("entryId") or ""
        if not isinstance(content_type, str) or not isinstance(entry_id, str):
            raise bad("entryId and contentType must be strings")
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise bad("an entry's metadata must be an object of strings")
        event = event_bytes(item.get("event"), content_type)
        entries.append(BulkEntry(entry_id, event, content_type, metadata))
    return entries


def publish_router() -> APIRouter:
    router = APIRouter(tags=["pub/sub (Dapr)"])

    @router.post(
        "/v1.0/publish/{pubsub}/{topic:path}",
        status_code=204,
        responses=responses(400, 401, 403, 404, 413),
    )
    async def publish(request: Request, pubsub: str, topic: str) -> Response:
        """Publish one event to `topic` (which may contain `/`) of `pubsub`. The body is
        the event: wrapped in a CloudEvent as daprd does, kept (and completed) when it is
        `application/cloudevents+json`, stored as is with `metadata.rawPayload=true`."""
        app = await _caller(request)
        broker = _broker(request)
        try:
            broker.check(app, pubsub, topic)
            body = await _body(request, pubsub, topic)
            await broker.publish(
                app,
                pubsub,
                topic,
                body,
                request.headers.get("content-type"),
                _metadata(request),
                traceparent=request.headers.get("traceparent", ""),
                tracestate=request.headers.get("tracestate", ""),
            )
        except PubSubError as exc:
            raise _api_error(exc) from None
        return Response(status_code=204)

    @router.post(
        "/v1.0-alpha1/publish/bulk/{pubsub}/{topic:path}",
        status_code=204,
        responses=responses(400, 401, 403, 404, 413),
    )
    async def bulk_publish(request: Request, pubsub: str, topic: str) -> Response:
        """Publish a JSON array of `{"entryId", "event", "contentType", "metadata"}`
        entries, all or none (daprd reports failed entries one by one; here none fail
        alone)."""
        app = await _caller(request)
        broker = _broker(request)
        try:
            broker.check(app, pubsub, topic)
            body = await _body(request, pubsub, topic)
            entries = _entries(body, pubsub, topic)
            await broker.bulk_publish(app, pubsub, topic, entries, _metadata(request))
        except PubSubError as exc:
            raise _api_error(exc) from None
        return Response(status_code=204)

    return router
