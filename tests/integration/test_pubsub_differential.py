"""The same pub/sub flows against a real daprd 1.16.5 (Redis pub/sub component on a real
Redis, a Resiliency policy of 2 retries 100 ms apart) and against duetime's embedded broker
(3 attempts), each delivering to a real subscriber app with the same subscriptions and the
same answers.

Compared: the publish answers (status and `errorCode`), every envelope each route received
(ids, times and random trace ids normalised away; the caller's `traceparent` compared as
is), the headers a subscriber can rely on, how often each route was called (the status
contract: SUCCESS, RETRY, DROP, 404, 500, an unknown status) and what reached the
dead-letter topic. Every difference is in DIFFERENCES with its reason; an unlisted one
fails the test, and so does a listed one that no longer happens.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from duetime.app import create_app
from duetime.db.engine import prepare
from duetime.localdapr import Daprd, Scheduler
from duetime.settings import Settings
from tests.brokers import RedisServer
from tests.subscriber import Subscriber

APP_ID = "diff-app"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CE = {"content-type": "application/cloudevents+json"}
JSON = {"content-type": "application/json"}

SUBSCRIPTIONS: list[dict[str, Any]] = [
    {"pubsubname": "pubsub", "topic": "orders", "route": "/orders"},
    {
        "pubsubname": "pubsub",
        "topic": "rules",
        "routes": {
            "rules": [{"match": 'event.type == "x.y"', "path": "/xy"}],
            "default": "/rdefault",
        },
    },
    {
        "pubsubname": "pubsub",
        "topic": "norule",
        "routes": {"rules": [{"match": 'event.type == "never"', "path": "/never"}]},
        "deadLetterTopic": "dead",
    },
    {"pubsubname": "pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"}},
    *[
        {"pubsubname": "pubsub", "topic": t, "route": f"/{t}", "deadLetterTopic": "dead"}
        for t in ("st-drop", "st-500", "st-404", "st-lower", "st-flaky", "st-success")
    ],
    {"pubsubname": "pubsub", "topic": "dead", "route": "/dead"},
]

# (what, key) → (daprd's value, duetime's value, reason). `what` is "publish" (status,
# errorCode), "calls" (how often a route was called) or "envelopes".
DIFFERENCES: dict[tuple[str, str], tuple[Any, Any, str]] = {
    ("publish", "cloudevent-not-json"): (
        (500, "ERR_PUBSUB_CLOUD_EVENTS_SER"),
        (400, "ERR_PUBSUB_CLOUD_EVENTS_SER"),
        "a malformed CloudEvent is the client's mistake: 400, not daprd's 500",
    ),
    ("publish", "cloudevent-array"): (
        (500, "ERR_PUBSUB_CLOUD_EVENTS_SER"),
        (400, "ERR_PUBSUB_CLOUD_EVENTS_SER"),
        "a CloudEvent that is not an object: 400, not daprd's 500",
    ),
    ("publish", "oversized"): (
        (500, "ERR_PUBSUB_PUBLISH_MESSAGE"),
        (413, "ERR_PUBSUB_PUBLISH_MESSAGE"),
        "a body over 4 MiB: 413 with daprd's code (daprd: 500 'stream too large')",
    ),
    ("publish", "empty-topic"): (
        (404, "ERR_DIRECT_INVOKE"),
        (404, "ERR_TOPIC_NAME_EMPTY"),
        "daprd routes /v1.0/publish/pubsub/ to service invocation; duetime names the error",
    ),
}


def normalise(value: Any) -> Any:
    """An envelope without what differs on every run: UUIDs, times, zero trace ids."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("time", "expiration") and isinstance(item, str):
                out[key] = "<time>"
            elif key == "id" and isinstance(item, str) and UUID.match(item):
                out[key] = "<uuid>"
            elif (
                key == "data_base64" and value.get("datacontenttype") == "application/octet-stream"
            ):
                try:
                    out[key] = normalise(json.loads(base64.b64decode(item)))
                except ValueError:
                    out[key] = item
            else:
                out[key] = normalise(item)
        return out
    return value


HEADERS = ("content-type", "pubsubname", "rawpayload", "foo", "cloudevent.id", "ttlinseconds")


def seen(sub: Subscriber) -> dict[str, list[Any]]:
    routes: dict[str, list[Any]] = {}
    for g in sub.got:
        try:
            body: Any = normalise(json.loads(g.body))
        except ValueError:
            body = g.body.decode("utf-8", "replace")
        headers = {k: g.headers[k] for k in HEADERS if k in g.headers}
        headers["traceparent?"] = "traceparent" in g.headers
        routes.setdefault(g.path, []).append({"body": body, "headers": headers})
    return {p: sorted(v, key=lambda x: json.dumps(x, sort_keys=True)) for p, v in routes.items()}


def answers() -> Callable[[str, bytes], tuple[int, bytes]]:
    flaky: list[int] = []

    def answer(path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/st-flaky":
            flaky.append(1)
            return (200, b'{"status":"RETRY"}') if len(flaky) < 3 else (200, b"")
        return {
            "/st-drop": (200, b'{"status":"DROP"}'),
            "/st-500": (500, b"boom"),
            "/st-404": (404, b""),
            "/st-lower": (200, b'{"status":"success"}'),
            "/st-success": (200, b"not json at all"),
        }.get(path, (200, b'{"status":"SUCCESS"}'))

    return answer


async def flows(client: httpx.AsyncClient) -> dict[str, tuple[int, str | None]]:
    """Every publish of the comparison; returns each one's (status, errorCode)."""
    out: dict[str, tuple[int, str | None]] = {}

    async def pub(name: str, path: str, **kw: Any) -> None:
        r = await client.post(path, **kw)
        code = r.json().get("errorCode") if r.content else None
        out[name] = (r.status_code, code)

    p = "/v1.0/publish/pubsub"
    await pub("json", f"{p}/orders", content=b'{"a":1,"big":12345678901234567890}', headers=JSON)
    await pub("text", f"{p}/orders", content=b"hello", headers={"content-type": "text/plain"})
    await pub(
        "binary",
        f"{p}/orders",
        content=b"\x00\x01",
        headers={"content-type": "application/octet-stream"},
    )
    await pub("bad-json", f"{p}/orders", content=b"nojson{", headers=JSON)
    await pub("empty", f"{p}/orders", content=b"")
    await pub(
        "cloudevent",
        f"{p}/orders",
        headers=CE,
        content=json.dumps(
            {
                "id": "my-id",
                "source": "me",
                "type": "t.x",
                "specversion": "1.0",
                "data": {"k": 2},
                "subject": "s",
            }
        ).encode(),
    )
    await pub("cloudevent-minimal", f"{p}/orders", headers=CE, content=b'{"data":5}')
    await pub(
        "overrides",
        f"{p}/orders?metadata.cloudevent.id=ov-id"
        "&metadata.cloudevent.type=ov.type&metadata.foo=bar",
        content=b'{"b":2}',
        headers={**JSON, "traceparent": TRACE},
    )
    await pub("ttl", f"{p}/orders?metadata.ttlInSeconds=100", content=b'{"ttl":1}', headers=JSON)
    await pub(
        "raw-publish", f"{p}/orders?metadata.rawPayload=true", content=b'{"raw":1}', headers=JSON
    )
    await pub(
        "raw-subscription", f"{p}/raw", content=b"rawbytes", headers={"content-type": "text/plain"}
    )
    await pub(
        "rule",
        f"{p}/rules",
        headers=CE,
        content=json.dumps(
            {"type": "x.y", "specversion": "1.0", "data": 1, "id": "r1", "source": "s"}
        ).encode(),
    )
    await pub("rule-default", f"{p}/rules", content=b'{"other":1}', headers=JSON)
    await pub("no-rule", f"{p}/norule", content=b'{"n":1}', headers=JSON)
    await pub("slash-topic", f"{p}/a/b/c", content=b"{}", headers=JSON)
    bulk = "/v1.0-alpha1/publish/bulk/pubsub/orders"
    entry = {"entryId": "1", "event": {"x": 1}, "contentType": "application/json"}
    await pub(
        "bulk", bulk, json=[entry, {"entryId": "2", "event": "txt", "contentType": "text/plain"}]
    )
    await pub("bulk-empty", bulk, json=[])
    # refused
    await pub("cloudevent-not-json", f"{p}/orders", content=b"{bad", headers=CE)
    await pub("cloudevent-array", f"{p}/orders", content=b"[1,2]", headers=CE)
    await pub("raw-not-bool", f"{p}/orders?metadata.rawPayload=maybe", content=b"{}", headers=JSON)
    await pub("unknown-pubsub", "/v1.0/publish/nope/orders", content=b"{}", headers=JSON)
    await pub(
        "oversized",
        f"{p}/orders",
        content=b"x" * (4 * 1024 * 1024 + 10),
        headers={"content-type": "text/plain"},
    )
    await pub("empty-topic", f"{p}/", content=b"{}", headers=JSON)
    await pub("bulk-duplicate-id", bulk, json=[entry, entry])
    await pub("bulk-missing-id", bulk, json=[{**entry, "entryId": ""}])
    await pub("bulk-not-json", bulk, content=b"{notalist")
    await pub("bulk-unknown-pubsub", "/v1.0-alpha1/publish/bulk/nope/orders", json=[])
    # the status contract, one topic each
    for topic in ("st-drop", "st-500", "st-404", "st-lower", "st-flaky", "st-success"):
        await pub(topic, f"{p}/{topic}", content=json.dumps({"t": topic}).encode(), headers=JSON)
    return out


EXPECTED_CALLS = {
    "/orders": 12,
    "/xy": 1,
    "/rdefault": 1,
    "/raw": 1,
    "/st-drop": 1,
    "/st-500": 3,
    "/st-404": 1,
    "/st-lower": 3,
    "/st-flaky": 3,
    "/st-success": 1,
    "/dead": 4,  # st-drop, st-500, st-lower, norule
}


async def settle(sub: Subscriber) -> None:
    """Until every route got its calls, then a little longer (nothing more may come)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while any(len(sub.on(p)) < n for p, n in EXPECTED_CALLS.items()):
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)


RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: pubsub-retries
spec:
  policies:
    retries:
      fast:
        policy: constant
        duration: 100ms
        maxRetries: 2
  targets:
    components:
      pubsub:
        inbound:
          retry: fast
"""


def component(redis: RedisServer) -> str:
    return (
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: pubsub\n"
        "spec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n"
        f"  - name: redisHost\n    value: {redis.address}\n"
    )


@pytest.fixture
def daprd_side(
    tmp_path: Path, make_redis: Callable[..., RedisServer]
) -> Iterator[tuple[str, Subscriber]]:
    redis = make_redis()
    sub = Subscriber(SUBSCRIPTIONS)
    sub.answer = answers()
    scheduler = Scheduler(tmp_path / "scheduler").start()
    daprd = Daprd(
        tmp_path / "daprd",
        app_id=APP_ID,
        app_port=sub.port,
        scheduler_address=scheduler,
        resources={"pubsub.yaml": component(redis), "resiliency.yaml": RESILIENCY},
    )
    try:
        daprd.start(wait_for_app=True)
        yield daprd.http_url, sub
    finally:
        daprd.stop()
        scheduler.stop()
        sub.close()


@contextlib.asynccontextmanager
async def duetime_side(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Subscriber]]:
    sub = Subscriber(SUBSCRIPTIONS)
    sub.answer = answers()
    settings = Settings(
        data_dir=tmp_path / "duetime",
        database_url=f"sqlite:///{tmp_path}/duetime.db",
        app_id=APP_ID,
        app_url=sub.url,
        grpc_port=0,
        access_log=False,
        pubsub_max_attempts=3,
        pubsub_backoff_base=0.1,
        pubsub_backoff_max=0.1,
    )
    await prepare(settings.resolved_database_url())
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            broker = app.state.runtime.pubsub
            await asyncio.wait_for(broker.discovered[APP_ID].wait(), 20)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://duetime", timeout=30
            ) as client:
                yield client, sub
        await asyncio.sleep(0.2)
    finally:
        sub.close()


def compare(what: str, dapr: dict[str, Any], ours: dict[str, Any], found: list[str]) -> None:
    for key in sorted(set(dapr) | set(ours)):
        a, b = dapr.get(key), ours.get(key)
        if a == b:
            continue
        listed = DIFFERENCES.get((what, key))
        if listed is not None and listed[0] == a and listed[1] == b:
            found.append(f"{what}:{key}")
            continue
        raise AssertionError(
            f"unlisted difference in {what} {key!r}:\n daprd:   {json.dumps(a, indent=1)}\n"
            f" duetime: {json.dumps(b, indent=1)}"
        )


async def test_publish_subscribe_flows_match_daprd(
    daprd_side: tuple[str, Subscriber], tmp_path: Path
) -> None:
    daprd_url, dapr_sub = daprd_side
    async with httpx.AsyncClient(base_url=daprd_url, timeout=30) as client:
        await asyncio.sleep(1.0)  # daprd subscribes right after it turns healthy
        dapr_answers = await flows(client)
    await settle(dapr_sub)
    async with duetime_side(tmp_path) as (client, our_sub):
        our_answers = await flows(client)
        await settle(our_sub)
    found: list[str] = []
    compare("publish", dapr_answers, our_answers, found)
    dapr_calls = {p: len(v) for p, v in seen(dapr_sub).items()}
    our_calls = {p: len(v) for p, v in seen(our_sub).items()}
    assert dapr_calls == EXPECTED_CALLS, dapr_calls  # the reference behaves as recorded
    compare("calls", dapr_calls, our_calls, found)
    reference = seen(dapr_sub)
    overrides = [e for e in reference["/orders"] if e["body"].get("id") == "ov-id"]
    assert overrides and overrides[0]["body"]["traceparent"] == TRACE  # not a vacuous compare
    assert overrides[0]["headers"]["foo"] == "bar"
    compare("envelopes", reference, seen(our_sub), found)
    stale = sorted(f"{w}:{k}" for w, k in DIFFERENCES if f"{w}:{k}" not in found)
    assert not stale, f"listed differences that no longer happen: {stale}"
