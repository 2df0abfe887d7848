"""`PublishEvent` and `BulkPublishEvent(Alpha1)` of Dapr's gRPC API, on the embedded broker.

As daprd 1.16.5 (`pkg/api/grpc/grpc.go`): an empty pub/sub name is INVALID_ARGUMENT
`pubsub name is empty`; the broker's own refusals keep the gRPC code daprd gives them
(`PubSubError.grpc_code`: an unknown pub/sub and an empty topic INVALID_ARGUMENT, an
event over 4 MiB RESOURCE_EXHAUSTED, …) with daprd's message and error code as the
`ErrorInfo` reason. The caller's `traceparent`/`tracestate` metadata go into the envelope.
A bulk publish stores all entries or none, so its answer never lists failed entries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import dapr.proto.runtime.v1 as pb
import grpc

from duetime.sidecar.apps import App
from duetime.sidecar.grpc_jobs import RpcError
from duetime.sidecar.pubsub import BulkEntry, EmbeddedPubSub, PubSubError

# daprd's error codes come in pairs (pkg/messages/errorcodes): the HTTP errorCode and the
# gRPC ErrorInfo reason
_GRPC_REASON = {
    "ERR_PUBSUB_EMPTY": "DAPR_PUBSUB_NAME_EMPTY",
    "ERR_PUBSUB_NOT_FOUND": "DAPR_PUBSUB_NOT_FOUND",
    "ERR_PUBSUB_NOT_CONFIGURED": "DAPR_PUBSUB_NOT_CONFIGURED",
    "ERR_TOPIC_NAME_EMPTY": "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
    "ERR_PUBSUB_FORBIDDEN": "DAPR_PUBSUB_FORBIDDEN",
    "ERR_PUBSUB_PUBLISH_MESSAGE": "DAPR_PUBSUB_PUBLISH_MESSAGE",
    "ERR_PUBSUB_REQUEST_METADATA": "DAPR_PUBSUB_METADATA_DESERIALIZATION",
    "ERR_PUBSUB_CLOUD_EVENTS_SER": "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
    "ERR_PUBSUB_EVENTS_SER": "DAPR_PUBSUB_MARSHAL_EVENTS",
}


def _rpc_error(exc: PubSubError) -> RpcError:
    code = getattr(grpc.StatusCode, exc.grpc_code, grpc.StatusCode.INVALID_ARGUMENT)
    return RpcError(code, exc.message, _GRPC_REASON.get(exc.code, exc.code))


def _check_name(pubsub: str) -> None:
    if not pubsub:
        raise RpcError(
            grpc.StatusCode.INVALID_ARGUMENT, "pubsub name is empty", "DAPR_PUBSUB_NAME_EMPTY"
        )


class GrpcPubSub:
    """The publish calls for the calling app, on `broker`. Each raises `RpcError`."""

    def __init__(self, broker: EmbeddedPubSub) -> None:
        self._broker = broker

    async def publish(
        self, app: App, request: pb.PublishEventRequest, metadata: Mapping[str, str]
    ) -> None:
        _check_name(request.pubsub_name)
        try:
            await self._broker.publish(
                app,
                request.pubsub_name,
                request.topic,
                request.data,
                request.data_content_type or None,
                dict(request.metadata),
                traceparent=metadata.get("traceparent", ""),
                tracestate=metadata.get("tracestate", ""),
            )
        except PubSubError as exc:
            raise _rpc_error(exc) from None

    async def bulk_publish(
        self, app: App, request: pb.BulkPublishRequest, metadata: Mapping[str, str]
    ) -> pb.BulkPublishResponse:
        _check_name(request.pubsub_name)
        entries = [
            BulkEntry(e.entry_id, e.event, e.content_type, dict(e.metadata))
            for e in request.entries
        ]
        try:
            await self._broker.bulk_publish(
                app, request.pubsub_name, request.topic, entries, dict(request.metadata)
            )
        except PubSubError as exc:
            raise _rpc_error(exc) from None
        return pb.BulkPublishResponse()


def metadata_source(
    broker: EmbeddedPubSub | None, runtime_version: str
) -> Callable[[App], Awaitable[pb.GetMetadataResponse]]:
    """`GetMetadata`'s answer for the calling app, from the same data as HTTP `GET
    /v1.0/metadata` (`duetime.api.sidecar_meta`): its id, `runtime_version` (and
    `extended_metadata.daprRuntimeVersion`), the pub/sub components it may use, its
    subscriptions and the app connection. The extended metadata set over HTTP (`PUT
    /v1.0/metadata/{key}`) is not shown here, and gRPC `SetMetadata` is not served."""

    async def build(app: App) -> pb.GetMetadataResponse:
        out = pb.GetMetadataResponse(id=app.app_id, runtime_version=runtime_version)
        if broker is not None:
            for c in broker.components(app):
                out.registered_components.add(
                    name=c["name"], type=c["type"], version=c.get("version", "")
                )
            for s in broker.subscription_list(app):
                sub = out.subscriptions.add(
                    pubsub_name=s.pubsub,
                    topic=s.topic,
                    dead_letter_topic=s.dead_letter_topic,
                    type=pb.PubsubSubscriptionType.Value(s.kind),
                )
                sub.metadata.update(dict(s.metadata))
                for r in s.rules:
                    sub.rules.rules.add(match=r.match or "", path=r.path)
        out.extended_metadata["daprRuntimeVersion"] = runtime_version
        props = out.app_connection_properties
        secure = bool(app.url and app.url.startswith("https:"))
        props.protocol = "https" if secure else app.protocol
        props.channel_address = _host(app.url)
        port = _port(app.url)
        if port is None and app.url and app.protocol == "http":
            port = 443 if secure else 80
        if port is not None:
            props.port = port
        return out

    return build


def _host(url: str | None) -> str:
    parts = urlsplit(url if url and "//" in url else f"//{url or ''}")
    return parts.hostname or ""


def _port(url: str | None) -> int | None:
    try:
        return urlsplit(url if url and "//" in url else f"//{url or ''}").port
    except ValueError:
        return None
