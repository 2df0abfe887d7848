"""Dapr's pub/sub building block, served by duetime: an embedded, durable broker in
duetime's database, with daprd's CloudEvents, subscriptions and status contract.

Python API (what the HTTP routes in `duetime.api.publish` and the gRPC server call)::

    broker = runtime.pubsub                      # an EmbeddedPubSub
    await broker.publish(app, "pubsub", "orders", b'{"id": 1}', "application/json",
                         {"ttlInSeconds": "60"}, traceparent="", tracestate="")
    await broker.bulk_publish(app, "pubsub", "orders",
                              [BulkEntry("1", b'{"id": 1}', "application/json", {})], {})
    broker.components(app)     # [{"name": "pubsub", "type": "pubsub.duetime", "version": "v1"}]
    broker.subscriptions(app)  # [{"pubsubname", "topic", "rules": [{"match"?, "path"}],
                               #   "deadLetterTopic", "type": "PROGRAMMATIC"|"DECLARATIVE",
                               #   "metadata"?}]   (daprd's GET /v1.0/metadata shapes)
    broker.subscription_list(app)  # the same as `Subscription` objects (for gRPC GetMetadata)

* `app` is the publishing `duetime.sidecar.apps.App` (its id is the CloudEvent `source`).
* `data` is the request body; `content_type` its content type (None: `text/plain`);
  `metadata` the request's `metadata.*` entries without the prefix (`rawPayload`,
  `ttlInSeconds`, `cloudevent.*` overrides; kept with the message and sent to subscribers
  as headers, as daprd does).
* Both return once the events are committed (durable), and raise before storing anything:
  `PubSubNotFoundError` (404 `ERR_PUBSUB_NOT_FOUND`: no such pub/sub for this app) or
  `PubSubRequestError` (a malformed CloudEvent 400 `ERR_PUBSUB_CLOUD_EVENTS_SER`, bad
  metadata 400 `ERR_PUBSUB_REQUEST_METADATA`, a bad bulk entry 400 `ERR_PUBSUB_EVENTS_SER`,
  an empty topic 404 `ERR_TOPIC_NAME_EMPTY`, an event over 4 MiB 413
  `ERR_PUBSUB_PUBLISH_MESSAGE`). Both are `PubSubError`s (a `ValueError`) with `.message`,
  `.status` (HTTP), `.code` (daprd's errorCode) and `.grpc_code` (a `grpc.StatusCode` name).

Pub/subs: `DUETIME_PUBSUBS` (default `["pubsub"]`, as `dapr init` creates), plus every
`pubsub.*` Component in `DUETIME_RESOURCES_PATH`; all are stored in duetime's database.
Delivery (at least once; HTTP apps by `POST`, gRPC apps by `AppCallback.OnTopicEvent`) is
in `delivery` and `grpc_app`, the envelope in `envelope`, subscriptions in `subscriptions`,
rows in `store`.
"""

from duetime.sidecar.pubsub.broker import BUILTIN_TYPE, MAX_BODY_BYTES, EmbeddedPubSub
from duetime.sidecar.pubsub.delivery import RetryPolicy
from duetime.sidecar.pubsub.requests import (
    BulkEntry,
    PubSubError,
    PubSubNotFoundError,
    PubSubRequestError,
    event_bytes,
)
from duetime.sidecar.pubsub.subscriptions import Resources, Subscription, load_resources

__all__ = [
    "BUILTIN_TYPE",
    "MAX_BODY_BYTES",
    "BulkEntry",
    "EmbeddedPubSub",
    "PubSubError",
    "PubSubNotFoundError",
    "PubSubRequestError",
    "Resources",
    "RetryPolicy",
    "Subscription",
    "event_bytes",
    "load_resources",
]
