"""Pub/sub to gRPC apps (`app.protocol == "grpc"`), as daprd 1.16.5 does it
(`pkg/runtime/pubsub/subscriptions.go`, `postman/grpc/grpc.go`):

* Subscriptions: `AppCallback.ListTopicSubscriptions`; UNIMPLEMENTED means none. A
  subscription without routes gets one rule with the empty path (always matches).
* Delivery: `AppCallback.OnTopicEvent(TopicEventRequest)` with the CloudEvent's `id`,
  `source`, `type`, `spec_version`, `data_content_type`, the data as bytes (`data_base64`
  decoded; text as UTF-8; JSON re-encoded), `topic`, `pubsub_name`, `path` (the matched
  rule's), and the other attributes as `extensions`; the publish metadata and
  `dapr-api-token` as gRPC metadata. Status SUCCESS: done; RETRY or an unknown status:
  retried; DROP: dropped (dead-lettered when the subscription has a topic for it). A call
  that fails with UNIMPLEMENTED is dropped (daprd: not retriable); any other error retried.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Literal

import grpc
import grpc.aio
from dapr.proto.runtime.v1 import appcallback_pb2, appcallback_pb2_grpc
from google.protobuf import empty_pb2, struct_pb2

from duetime.sidecar.pubsub.rules import RuleError, compile_rule
from duetime.sidecar.pubsub.subscriptions import Rule, Subscription

Verdict = Literal["done", "retry", "drop", "unimplemented"]

_DUPLICATED = {"id", "source", "datacontenttype", "type", "specversion", "data", "data_base64"}
_MAX_MESSAGE = 4 * 1024 * 1024


class GrpcUnavailable(Exception):
    """The app's gRPC server did not answer (not up yet)."""


class GrpcTopicClient:
    """`AppCallback` of one app at `address` (`host:port`, plaintext, as daprd without
    mTLS)."""

    def __init__(self, address: str, *, token: str | None, timeout: float) -> None:
        self._address = address
        self._token = token
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> appcallback_pb2_grpc.AppCallbackStub:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self._address,
                options=[
                    ("grpc.max_send_message_length", _MAX_MESSAGE),
                    ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ],
            )
        return appcallback_pb2_grpc.AppCallbackStub(self._channel)

    def _metadata(self, extra: Mapping[str, str] = {}) -> list[tuple[str, str]]:
        found = [(k.lower(), v) for k, v in extra.items() if _valid_key(k.lower())]
        if self._token:
            found.append(("dapr-api-token", self._token))
        return found

    async def subscriptions(self, app_id: str) -> list[Subscription]:
        """The app's subscriptions; raises `GrpcUnavailable` while it cannot be reached,
        `RuleError` for a rule duetime cannot evaluate (that subscription is skipped)."""
        try:
            answer = await self._stub().ListTopicSubscriptions(
                empty_pb2.Empty(), metadata=self._metadata(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return []
            raise GrpcUnavailable(f"{exc.code().name}: {exc.details()}") from None
        found = []
        for s in answer.subscriptions:
            rules: list[Rule] = []
            try:
                for r in s.routes.rules:
                    if r.match:
                        rules.append(Rule(r.path, r.match, compile_rule(r.match)))
                    else:
                        rules.append(Rule(r.path))
            except RuleError:
                continue
            if s.routes.default:
                rules.append(Rule(s.routes.default))
            if not rules:
                rules.append(Rule(""))
            found.append(
                Subscription(
                    app_id,
                    s.pubsub_name,
                    s.topic,
                    tuple(rules),
                    s.dead_letter_topic,
                    dict(s.metadata),
                    "PROGRAMMATIC",
                )
            )
        return found

    async def deliver(
        self,
        event: Mapping[str, Any],
        *,
        pubsub: str,
        topic: str,
        path: str,
        metadata: Mapping[str, str],
    ) -> tuple[Verdict, str]:
        request = topic_event_request(event, pubsub=pubsub, topic=topic, path=path)
        try:
            answer = await self._stub().OnTopicEvent(
                request, metadata=self._metadata(metadata), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            why = f"the app answered {exc.code().name}: {exc.details()}"
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return "unimplemented", why
            return "retry", why
        status = answer.status
        if status == appcallback_pb2.TopicEventResponse.SUCCESS:
            return "done", ""
        if status == appcallback_pb2.TopicEventResponse.DROP:
            return "drop", "the app answered DROP"
        return "retry", f"the app answered status {status}"

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def _valid_key(key: str) -> bool:
    return bool(key) and all(c.isalnum() or c in "-_." for c in key) and not key.endswith("-bin")


def _text(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    return value if isinstance(value, str) else ""


def topic_event_request(
    event: Mapping[str, Any], *, pubsub: str, topic: str, path: str
) -> appcallback_pb2.TopicEventRequest:
    """daprd's `TopicEventRequest` for a CloudEvent (see the module docstring)."""
    content_type = _text(event, "datacontenttype")
    data = b""
    if isinstance(event.get("data_base64"), str):
        data = base64.b64decode(event["data_base64"])
    elif event.get("data") is not None:
        value = event["data"]
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind.startswith("text/") or kind == "application/xml":
            data = value.encode("utf-8") if isinstance(value, str) else b""
        elif kind in ("application/json", "application/cloudevents+json"):
            data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    extensions = struct_pb2.Struct()
    extensions.update({k: v for k, v in event.items() if k not in _DUPLICATED})
    return appcallback_pb2.TopicEventRequest(
        id=_text(event, "id"),
        source=_text(event, "source"),
        type=_text(event, "type"),
        spec_version=_text(event, "specversion"),
        data_content_type=content_type,
        data=data,
        topic=topic,
        pubsub_name=pubsub,
        path=path,
        extensions=extensions,
    )
