"""What a publish may be refused for (daprd's codes), and bulk-publish entries. Pure."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from duetime.sidecar.pubsub.envelope import go_json, media_type


class PubSubError(ValueError):
    """A publish refused before anything was stored. `status` is the HTTP status, `code`
    daprd's error code, `grpc_code` the gRPC status name daprd uses."""

    status = 400
    code = "ERR_PUBSUB_PUBLISH_MESSAGE"
    grpc_code = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        grpc_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if grpc_code is not None:
            self.grpc_code = grpc_code


class PubSubNotFoundError(PubSubError):
    """No pub/sub of that name for this app: 404 `ERR_PUBSUB_NOT_FOUND`."""

    status = 404
    code = "ERR_PUBSUB_NOT_FOUND"


class PubSubRequestError(PubSubError):
    """A request daprd refuses: bad metadata, a malformed CloudEvent, an oversized body,
    an empty topic, a bad bulk entry."""


@dataclass(frozen=True)
class BulkEntry:
    """One entry of a bulk publish: the event's bytes as the component would get them for
    `content_type` (see `event_bytes`)."""

    entry_id: str
    event: bytes
    content_type: str
    metadata: Mapping[str, str] = field(default_factory=dict)


def event_bytes(event: Any, content_type: str) -> bytes:
    """A bulk entry's JSON `event` as bytes, as daprd's `ConvertEventToBytes`: base64 text
    for `application/octet-stream`, a string for `text/*` and `application/xml`, any JSON
    value for JSON and CloudEvent content types. Raises `PubSubRequestError`."""
    kind = media_type(content_type)
    mismatch = PubSubRequestError(
        "error when marshalling cloud event envelope: the content type does not match the event",
        code="ERR_PUBSUB_EVENTS_SER",
    )
    if kind == "application/octet-stream":
        if not isinstance(event, str):
            raise mismatch
        try:
            return base64.b64decode(event, validate=True)
        except ValueError:
            raise PubSubRequestError(
                "unable to decode base64 application/octet-stream data",
                code="ERR_PUBSUB_EVENTS_SER",
            ) from None
    if kind.startswith("text/") or kind == "application/xml":
        if not isinstance(event, str):
            raise mismatch
        return event.encode("utf-8")
    if kind in ("application/json", "application/cloudevents+json"):
        return go_json(event)
    raise mismatch
