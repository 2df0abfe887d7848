"""CloudEvents as daprd 1.16 builds them for pub/sub. Pure: no I/O; `now` is passed in.

Mirrors `components-contrib/pubsub/envelope.go` and `dapr/pkg/runtime/pubsub/cloudevents.go`
(checked against a real daprd 1.16.5 with the Redis component):

* A body that is not `application/cloudevents+json` is wrapped: `id` (a UUID), `source` (the
  publishing app's id), `type` `com.dapr.event.sent`, `specversion` `1.0`,
  `datacontenttype` (the request's content type, `text/plain` when none), `topic`,
  `pubsubname`, `traceid` = `traceparent` (the caller's `traceparent`, or "" when none),
  `tracestate`, `time` (RFC 3339, seconds), and the payload: `data` parsed as JSON for a
  JSON content type (kept as a string when it does not parse), `data_base64` for
  `application/octet-stream`, else `data` as text. Metadata `cloudevent.id`,
  `cloudevent.source`, `cloudevent.type`, `cloudevent.traceid`, `cloudevent.traceparent`,
  `cloudevent.tracestate` override those attributes.
* An `application/cloudevents+json` body must be a JSON object (`MalformedCloudEvent`
  otherwise); it keeps every attribute it has and gets `topic` and `pubsubname`, `time`
  and the trace attributes when missing, and `source` `Dapr`, `type`
  `com.dapr.event.sent`, `specversion` `1.0` when missing. No `id` is added.
* `ttlInSeconds` metadata adds `expiration` (`now` + ttl).
* Serialized as Go's `encoding/json` does a map: keys sorted, no spaces, `<`, `>`, `&`,
  U+2028 and U+2029 escaped.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_TYPE = "com.dapr.event.sent"
DEFAULT_SOURCE = "Dapr"
SPEC_VERSION = "1.0"
CLOUD_EVENT_JSON = "application/cloudevents+json"
RAW_PAYLOAD = "rawPayload"
TTL = "ttlInSeconds"

_OVERRIDES = {
    "cloudevent.id": "id",
    "cloudevent.source": "source",
    "cloudevent.type": "type",
    "cloudevent.traceid": "traceid",
    "cloudevent.traceparent": "traceparent",
    "cloudevent.tracestate": "tracestate",
}


class MalformedCloudEvent(ValueError):
    """An `application/cloudevents+json` body that is not a JSON object."""


class BadMetadata(ValueError):
    """A `metadata.*` value daprd refuses (`rawPayload` not a boolean)."""


def media_type(content_type: str | None) -> str:
    """The lower-cased media type without parameters (`""` for none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_cloud_event(content_type: str | None) -> bool:
    return media_type(content_type) == CLOUD_EVENT_JSON


def _parse_bool(value: str) -> bool:
    """Go's `strconv.ParseBool`."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise BadMetadata(f"rawPayload value must be a valid boolean: actual is '{value}'")


def is_raw_payload(metadata: Mapping[str, str]) -> bool:
    """`metadata.rawPayload`, as daprd reads it (raises `BadMetadata`)."""
    value = metadata.get(RAW_PAYLOAD, "")
    return _parse_bool(value) if value else False


def go_json(value: Any) -> bytes:
    """`value` as Go's `json.Marshal` writes a `map[string]any`."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def rfc3339_seconds(now: datetime) -> str:
    """Go's `time.Now().Format(time.RFC3339)` for an aware UTC time."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _data_field(content_type: str, data: bytes) -> tuple[str, Any]:
    kind = media_type(content_type)
    if kind == "application/json":
        try:
            return "data", json.loads(data)
        except ValueError:
            return "data", data.decode("utf-8", "replace")
    if kind == "application/octet-stream":
        return "data_base64", base64.b64encode(data).decode("ascii")
    return "data", data.decode("utf-8", "replace")


def _expiration(metadata: Mapping[str, str], now: datetime) -> str | None:
    value = metadata.get(TTL)
    if not value:
        return None
    try:
        seconds = int(value)
    except ValueError:
        return None
    if seconds <= 0:
        return None
    return rfc3339_seconds(now + timedelta(seconds=seconds))


def build_envelope(
    *,
    source: str,
    pubsub: str,
    topic: str,
    data: bytes,
    content_type: str | None,
    metadata: Mapping[str, str],
    now: datetime,
    traceparent: str = "",
    tracestate: str = "",
) -> dict[str, Any]:
    """The CloudEvent daprd publishes for this request (see the module docstring).
    Raises `MalformedCloudEvent`."""
    if is_cloud_event(content_type):
        envelope = from_cloud_event(
            data,
            pubsub=pubsub,
            topic=topic,
            now=now,
            traceparent=traceparent,
            tracestate=tracestate,
        )
    else:
        attrs = {
            "id": "",
            "source": source,
            "type": "",
            "traceid": traceparent,
            "traceparent": "",
            "tracestate": tracestate,
        }
        for key, value in metadata.items():
            field = _OVERRIDES.get(key.lower())
            if field is not None:
                attrs[field] = value
        if attrs["traceparent"]:
            attrs["traceid"] = attrs["traceparent"]
        ctype = content_type or "text/plain"
        field, payload = _data_field(ctype, data)
        envelope = {
            "id": attrs["id"] or str(uuid.uuid4()),
            "specversion": SPEC_VERSION,
            "datacontenttype": ctype,
            "source": attrs["source"] or DEFAULT_SOURCE,
            "type": attrs["type"] or DEFAULT_TYPE,
            "topic": topic,
            "pubsubname": pubsub,
            "traceid": attrs["traceid"],
            "traceparent": attrs["traceid"],
            "tracestate": attrs["tracestate"],
            "time": rfc3339_seconds(now),
            field: payload,
        }
    expiration = _expiration(metadata, now)
    if expiration is not None:
        envelope["expiration"] = expiration
    return envelope


def from_cloud_event(
    body: bytes | dict[str, Any],
    *,
    pubsub: str,
    topic: str,
    now: datetime,
    traceparent: str = "",
    tracestate: str = "",
) -> dict[str, Any]:
    """An `application/cloudevents+json` body completed as daprd does. Raises
    `MalformedCloudEvent` when it is not a JSON object."""
    if isinstance(body, dict):
        event = dict(body)
    else:
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedCloudEvent(f"the body is not valid JSON: {exc}") from None
        if not isinstance(event, dict):
            raise MalformedCloudEvent("a CloudEvent must be a JSON object")
    event.setdefault("time", rfc3339_seconds(now))
    if "traceid" not in event:
        event["traceid"] = traceparent
        event["traceparent"] = traceparent
    event.setdefault("tracestate", tracestate)
    event["topic"] = topic
    event["pubsubname"] = pubsub
    for key, default in (("source", DEFAULT_SOURCE), ("type", DEFAULT_TYPE)):
        if event.get(key) is None:
            event[key] = default
    if event.get("specversion") is None:
        event["specversion"] = SPEC_VERSION
    return event


def raw_payload_envelope(data: bytes, *, pubsub: str, topic: str) -> dict[str, Any]:
    """What a subscription with `rawPayload: "true"` receives: the stored bytes as
    `data_base64` in a fresh CloudEvent (daprd's `FromRawPayload`)."""
    return {
        "id": str(uuid.uuid4()),
        "specversion": SPEC_VERSION,
        "datacontenttype": "application/octet-stream",
        "source": DEFAULT_SOURCE,
        "type": DEFAULT_TYPE,
        "topic": topic,
        "pubsubname": pubsub,
        "data_base64": base64.b64encode(data).decode("ascii"),
    }


def has_expired(event: Mapping[str, Any], now: datetime) -> bool:
    """The event's `expiration` (RFC 3339) is before `now`."""
    value = event.get("expiration")
    if not isinstance(value, str) or not value:
        return False
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    if at.tzinfo is None:
        return False
    return at < now
