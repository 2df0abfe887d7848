"""The embedded Dapr pub/sub, in-process (httpx's ASGI transport, the app's lifespan run) on
a real database (SQLite; PostgreSQL for the core flow), delivering to a real subscriber app
over HTTP (`tests/subscriber.py`).

What daprd 1.16.5 does was measured with the real binary (tests/integration/
test_pubsub_differential.py runs both); here each rule is checked on duetime alone, with
small retry delays so the status contract plays out in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from duetime.app import create_app
from duetime.auth import issue_token
from duetime.bootstrap import Runtime
from duetime.db.engine import prepare
from duetime.db.tables import pubsub_messages
from duetime.settings import Settings
from duetime.sidecar.pubsub import EmbeddedPubSub
from tests.conftest import free_port
from tests.subscriber import Subscriber

SECRET = "embedded-pubsub-secret-0123456789abcdef"
APP = "orders-app"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Duetime:
    def __init__(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        self.http = client
        self.runtime = runtime

    @property
    def broker(self) -> EmbeddedPubSub:
        assert self.runtime.pubsub is not None
        return self.runtime.pubsub

    async def publish(
        self,
        topic: str,
        body: Any = None,
        *,
        pubsub: str = "pubsub",
        query: str = "",
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if content is None:
            content = json.dumps(body).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        return await self.http.post(
            f"/v1.0/publish/{pubsub}/{topic}{query}", content=content, headers=headers or {}
        )

    async def messages(self) -> int:
        engine = self.runtime.task_store._engine  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(pubsub_messages)) or 0)

    async def discovered(self, app_id: str = APP) -> None:
        await asyncio.wait_for(self.broker.discovered[app_id].wait(), 20)


Run = Callable[..., contextlib.AbstractAsyncContextManager[Duetime]]


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber([])
    yield sub
    sub.close()


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/duetime.db"


@pytest.fixture
def run(tmp_path: Path, database_url: str, subscriber: Subscriber) -> Run:
    """`async with run(**settings) as duetime`: duetime started on its database, its default
    app `orders-app` at the subscriber's URL, retries 0.05 s apart, 3 attempts."""

    @contextlib.asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[Duetime]:
        base: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "jwt_secret": SECRET,
            "app_id": APP,
            "app_url": subscriber.url,
            "pubsub_backoff_base": 0.05,
            "pubsub_backoff_max": 0.2,
            "pubsub_max_attempts": 3,
            "app_timeout": 5,
            "grpc_port": 0,
            "access_log": False,
        }
        settings = Settings(**{**base, **overrides})
        await prepare(settings.resolved_database_url())
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://duetime", timeout=30
            ) as client:
                yield Duetime(client, app.state.runtime)
        await asyncio.sleep(0.2)

    return running


async def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def got(sub: Subscriber, path: str, n: int = 1, timeout: float = 30.0) -> list[Any]:
    await wait_for(lambda: len(sub.on(path)) >= n, timeout)
    return sub.on(path)


# -- the core flow --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
async def test_publish_is_stored_and_delivered_as_daprd_builds_it(
    run: Run, subscriber: Subscriber
) -> None:
    subscriber.subscriptions = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]
    async with run() as duetime:
        await duetime.discovered()
        trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        r = await duetime.publish(
            "orders", {"order": 1, "<&>": "x"}, headers={"traceparent": trace}
        )
        assert r.status_code == 204 and r.content == b""
        assert (
            await duetime.publish(
                "orders", content=b"hello", headers={"content-type": "text/plain"}
            )
        ).status_code == 204
        r = await duetime.publish(
            "orders", content=b"\x00\x01", headers={"content-type": "application/octet-stream"}
        )
        assert r.status_code == 204
        structured = {
            "id": "my-id",
            "source": "me",
            "type": "t.x",
            "specversion": "1.0",
            "data": {"k": 2},
            "subject": "s",
        }
        r = await duetime.publish(
            "orders",
            content=json.dumps(structured).encode(),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert r.status_code == 204
        received = await got(subscriber, "/orders", 4)

    def key(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    by_data = {key(g.event.get("data", g.event.get("data_base64"))): g for g in received}
    first = by_data[key({"order": 1, "<&>": "x"})]
    event = first.event
    assert set(event) == {
        "id",
        "source",
        "type",
        "specversion",
        "datacontenttype",
        "data",
        "topic",
        "pubsubname",
        "traceid",
        "traceparent",
        "tracestate",
        "time",
    }
    assert uuid.UUID(event["id"]) and event["source"] == APP
    assert event["type"] == "com.dapr.event.sent" and event["specversion"] == "1.0"
    assert event["datacontenttype"] == "application/json"
    assert event["topic"] == "orders" and event["pubsubname"] == "pubsub"
    assert event["traceid"] == event["traceparent"] == trace and event["tracestate"] == ""
    assert RFC3339.match(event["time"])
    assert b"\\u003c\\u0026\\u003e" in first.body  # Go's encoding/json escapes <&>
    assert first.headers["content-type"] == "application/cloudevents+json"
    assert first.headers["pubsubname"] == "pubsub"
    assert first.headers["traceparent"] == trace
    text = by_data['"hello"'].event
    assert text["datacontenttype"] == "text/plain"
    binary = by_data[key(base64.b64encode(b"\x00\x01").decode())].event
    assert binary["datacontenttype"] == "application/octet-stream" and "data" not in binary
    kept = by_data[key({"k": 2})].event
    assert kept["id"] == "my-id" and kept["source"] == "me" and kept["subject"] == "s"
    assert kept["type"] == "t.x" and kept["topic"] == "orders" and "datacontenttype" not in kept


async def test_bad_input_is_a_4xx_with_daprd_codes_and_stores_nothing(
    run: Run, subscriber: Subscriber
) -> None:
    subscriber.subscriptions = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]
    ce = {"content-type": "application/cloudevents+json"}
    async with run() as duetime:
        await duetime.discovered()
        cases = [
            (await duetime.publish("orders", {}, pubsub="nope"), 404, "ERR_PUBSUB_NOT_FOUND"),
            (
                await duetime.publish("orders", content=b"{bad", headers=ce),
                400,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
            ),
            (
                await duetime.publish("orders", content=b"[1,2]", headers=ce),
                400,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
            ),
            (
                await duetime.publish("orders", {}, query="?metadata.rawPayload=maybe"),
                400,
                "ERR_PUBSUB_REQUEST_METADATA",
            ),
            (
                await duetime.publish(
                    "orders",
                    content=b"x" * (4 * 1024 * 1024 + 1),
                    headers={"content-type": "text/plain"},
                ),
                413,
                "ERR_PUBSUB_PUBLISH_MESSAGE",
            ),
            (await duetime.publish("", {}), 404, "ERR_TOPIC_NAME_EMPTY"),
        ]
        bulk = "/v1.0-alpha1/publish/bulk/pubsub/orders"
        entry = {"entryId": "1", "event": {"x": 1}, "contentType": "application/json"}
        for body, code in [
            ([entry, entry], "ERR_PUBSUB_EVENTS_SER"),
            ([{**entry, "entryId": ""}], "ERR_PUBSUB_EVENTS_SER"),
            ({"not": "a list"}, "ERR_PUBSUB_EVENTS_SER"),
            ([{**entry, "contentType": "text/plain"}], "ERR_PUBSUB_EVENTS_SER"),
        ]:
            cases.append((await duetime.http.post(bulk, json=body), 400, code))
        cases.append(
            (
                await duetime.http.post("/v1.0-alpha1/publish/bulk/nope/o", json=[]),
                404,
                "ERR_PUBSUB_NOT_FOUND",
            )
        )
        for response, status, code in cases:
            assert (response.status_code, response.json()["errorCode"]) == (status, code), (
                response.request.url,
                response.text,
            )
            assert response.json()["message"]
        assert await duetime.messages() == 0
        # and a good publish still goes through afterwards
        assert (await duetime.publish("orders", {"ok": 1})).status_code == 204
        await got(subscriber, "/orders")
        assert len(subscriber.got) == 1


@pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
async def test_bulk_publish_stores_every_entry(run: Run, subscriber: Subscriber) -> None:
    subscriber.subscriptions = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]
    async with run() as duetime:
        await duetime.discovered()
        r = await duetime.http.post(
            "/v1.0-alpha1/publish/bulk/pubsub/orders",
            json=[
                {"entryId": "1", "event": {"x": 1}, "contentType": "application/json"},
                {
                    "entryId": "2",
                    "event": "txt",
                    "contentType": "text/plain",
                    "metadata": {"cloudevent.type": "my.type"},
                },
                {
                    "entryId": "3",
                    "event": base64.b64encode(b"\x01").decode(),
                    "contentType": "application/octet-stream",
                },
            ],
        )
        assert r.status_code == 204, r.text
        received = await got(subscriber, "/orders", 3)
    events = sorted((g.event for g in received), key=lambda e: e["datacontenttype"])
    assert [e["datacontenttype"] for e in events] == [
        "application/json",
        "application/octet-stream",
        "text/plain",
    ]
    assert events[0]["data"] == {"x": 1} and events[1]["data_base64"] == "AQ=="
    assert events[2]["data"] == "txt" and events[2]["type"] == "my.type"


# -- the status contract --------------------------------------------------------------------


async def test_status_contract_retries_drops_and_dead_letters(
    run: Run, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    subscriber.subscriptions = [
        {"pubsubname": "pubsub", "topic": t, "route": f"/{t}", "deadLetterTopic": "dead"}
        for t in ("flaky", "drop", "gone", "broken", "odd")
    ] + [
        {"pubsubname": "pubsub", "topic": "nodl", "route": "/nodl"},
        {"pubsubname": "pubsub", "topic": "dead", "route": "/dead"},
    ]
    flaky: list[int] = []

    def answer(path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/flaky":
            flaky.append(1)
            return (200, b'{"status":"RETRY"}') if len(flaky) < 3 else (200, b"")
        return {
            "/drop": (200, b'{"status":"DROP"}'),
            "/gone": (404, b"not here"),
            "/broken": (500, b"boom"),
            "/odd": (200, b'{"status":"success"}'),  # unknown (lower case): retried
            "/nodl": (503, b""),
        }.get(path, (200, b'{"status":"SUCCESS"}'))

    subscriber.answer = answer
    async with run() as duetime:
        await duetime.discovered()
        for topic in ("flaky", "drop", "gone", "broken", "odd", "nodl"):
            assert (await duetime.publish(topic, {"topic": topic})).status_code == 204
        dead = await got(subscriber, "/dead", 3)  # drop, broken, odd
        await got(subscriber, "/nodl", 3)
        await wait_for(lambda: len(subscriber.on("/flaky")) == 3)
        await wait_for(lambda: "retries exhausted" in caplog.text and "dropped" in caplog.text, 10)
        await asyncio.sleep(0.5)  # nothing more arrives
        counts = await duetime.broker.store.counts()
    assert sorted(g.event["data"]["topic"] for g in dead) == ["broken", "drop", "odd"]
    assert all(g.event["topic"] != "dead" for g in dead)  # the envelope is unchanged
    assert len(subscriber.on("/drop")) == 1
    assert len(subscriber.on("/gone")) == 1  # 404: not retried, not dead-lettered
    assert len(subscriber.on("/broken")) == 3 and len(subscriber.on("/odd")) == 3
    assert len(subscriber.on("/nodl")) == 3 and len(subscriber.on("/dead")) == 3
    assert "pending" not in counts, counts
    assert counts["dropped"] == 2 and counts["dead"] == 3 and counts["done"] == 4


async def test_unreachable_app_is_retried_then_delivered(run: Run, subscriber: Subscriber) -> None:
    port = free_port()
    late = Subscriber([{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}], port)
    late.close()  # the app is down: published events wait
    async with run(app_url=f"http://127.0.0.1:{port}", pubsub_max_attempts=100) as duetime:
        assert (await duetime.publish("orders", {"early": 1})).status_code == 204
        await asyncio.sleep(1.0)
        app = Subscriber([{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}], port)
        try:
            # discovered once the app answers, then delivered: published before the app
            # subscribed, as a Redis consumer group created at 0 reads the stream's start
            received = await got(app, "/orders", 1, timeout=30)
            assert received[0].event["data"] == {"early": 1}
            assert app.subscribe_calls == 1
        finally:
            app.close()


# -- subscriptions --------------------------------------------------------------------------


async def test_v2_rules_raw_payload_and_app_token(run: Run, subscriber: Subscriber) -> None:
    subscriber.subscriptions = [
        {
            "pubsubname": "pubsub",
            "topic": "rules",
            "routes": {
                "rules": [
                    {"match": 'event.type == "order.created"', "path": "/created"},
                    {"match": "event.data.n > 5 && event.source != 'x'", "path": "/big"},
                ],
                "default": "/other",
            },
        },
        {
            "pubsubname": "pubsub",
            "topic": "norule",
            "routes": {"rules": [{"match": 'event.type == "never"', "path": "/never"}]},
        },
        {
            "pubsubname": "pubsub",
            "topic": "raw",
            "route": "/raw",
            "metadata": {"rawPayload": "true"},
        },
        {"pubsubname": "pubsub", "topic": "plain", "route": "/plain"},
        {
            "pubsubname": "pubsub",
            "topic": "bad",
            "routes": {"rules": [{"match": "event.type ==", "path": "/unsupported"}]},
        },
    ]
    ce = {"content-type": "application/cloudevents+json"}
    async with run(app_api_token="to-the-app") as duetime:
        await duetime.discovered()
        created = {"type": "order.created", "specversion": "1.0", "id": "c1", "source": "s"}
        await duetime.publish("rules", content=json.dumps(created).encode(), headers=ce)
        await duetime.publish("rules", {"n": 9})
        await duetime.publish("rules", {"n": 1})
        await duetime.publish("norule", {"n": 1})
        await duetime.publish("raw", content=b"rawbytes", headers={"content-type": "text/plain"})
        r = await duetime.publish(
            "plain",
            content=b'{"raw":1}',
            query="?metadata.rawPayload=true",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 204
        assert (await got(subscriber, "/created"))[0].event["id"] == "c1"
        assert (await got(subscriber, "/big"))[0].event["data"] == {"n": 9}
        assert (await got(subscriber, "/other"))[0].event["data"] == {"n": 1}
        raw = (await got(subscriber, "/raw"))[0]
        plain = (await got(subscriber, "/plain"))[0]
        listed = duetime.broker.subscriptions(duetime.runtime.apps.default)
        await asyncio.sleep(0.3)
    assert subscriber.on("/never") == []
    assert raw.event["datacontenttype"] == "application/octet-stream"
    inner = json.loads(base64.b64decode(raw.event["data_base64"]))
    assert inner["data"] == "rawbytes" and inner["source"] == APP
    assert plain.body == b'{"raw":1}' and plain.headers["rawpayload"] == "true"
    assert "traceparent" not in raw.headers
    assert all(g.headers["dapr-api-token"] == "to-the-app" for g in subscriber.got)
    assert [s["topic"] for s in listed] == ["rules", "norule", "raw", "plain"]  # "bad" refused
    assert listed[0] == {
        "pubsubname": "pubsub",
        "topic": "rules",
        "rules": [
            {"match": 'event.type == "order.created"', "path": "/created"},
            {"match": "event.data.n > 5 && event.source != 'x'", "path": "/big"},
            {"path": "/other"},
        ],
        "deadLetterTopic": "",
        "type": "PROGRAMMATIC",
    }


async def test_declarative_subscriptions_and_components_from_resources(
    run: Run, subscriber: Subscriber, tmp_path: Path
) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "bus.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders-bus\n"
        "spec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - name: redisHost\n"
        "    value: localhost:6379\n"
    )
    (resources / "subs.yaml").write_text(
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: s1\n"
        "spec:\n  pubsubname: orders-bus\n  topic: shipped\n  routes:\n    rules:\n"
        '    - match: event.type == "express"\n      path: /express\n    default: /shipped\n'
        "scopes:\n- orders-app\n"
        "---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata:\n  name: s2\n"
        "spec:\n  pubsubname: pubsub\n  topic: other\n  route: /not-mine\nscopes:\n- billing\n"
    )
    subscriber.subscriptions = None  # no programmatic ones (404)
    async with run(resources_path=resources, pubsubs=["pubsub", "extra"]) as duetime:
        await duetime.discovered()
        assert (await duetime.publish("shipped", {"n": 1}, pubsub="orders-bus")).status_code == 204
        assert (await duetime.publish("other", {"n": 1})).status_code == 204
        assert (await duetime.publish("x", {"n": 1}, pubsub="extra")).status_code == 204
        received = await got(subscriber, "/shipped")
        app = duetime.runtime.apps.default
        components = duetime.broker.components(app)
        listed = duetime.broker.subscriptions(app)
        await asyncio.sleep(0.3)
    assert received[0].event["pubsubname"] == "orders-bus"
    assert subscriber.on("/not-mine") == []
    assert {c["name"]: c["type"] for c in components} == {
        "pubsub": "pubsub.duetime",
        "extra": "pubsub.duetime",
        "orders-bus": "pubsub.redis",
    }
    assert listed == [
        {
            "pubsubname": "orders-bus",
            "topic": "shipped",
            "rules": [
                {"match": 'event.type == "express"', "path": "/express"},
                {"path": "/shipped"},
            ],
            "deadLetterTopic": "",
            "type": "DECLARATIVE",
        }
    ]


# -- durability and duetime's own events ----------------------------------------------------


async def test_undelivered_events_survive_a_restart(run: Run, subscriber: Subscriber) -> None:
    subscriber.subscriptions = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]
    subscriber.answer = lambda path, body: (503, b"")
    async with run(pubsub_max_attempts=100, pubsub_backoff_base=0.5) as duetime:
        await duetime.discovered()
        for i in range(5):
            assert (await duetime.publish("orders", {"i": i})).status_code == 204
        await got(subscriber, "/orders", 5)
    subscriber.answer = lambda path, body: (200, b"")
    before = len(subscriber.got)
    async with run(pubsub_max_attempts=100) as duetime:
        await wait_for(
            lambda: {g.event["data"]["i"] for g in subscriber.got[before:]} == set(range(5)), 30
        )
        counts: dict[str, int] = {}
        for _ in range(200):  # outcomes are written just after the app answered
            counts = await duetime.broker.store.counts()
            if counts.get("done") == 5:
                break
            await asyncio.sleep(0.05)
    assert counts == {"done": 5}, counts


async def test_a_clean_stop_mid_delivery_releases_the_lease(
    run: Run, subscriber: Subscriber
) -> None:
    subscriber.subscriptions = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]

    def slow(path: str, body: bytes) -> tuple[int, bytes]:
        time.sleep(3)  # still answering when duetime stops
        return (200, b"")

    subscriber.answer = slow
    async with run(app_timeout=30) as duetime:  # a lease of 35 s
        await duetime.discovered()
        for i in range(3):
            assert (await duetime.publish("orders", {"i": i})).status_code == 204
        await asyncio.sleep(0.5)  # claimed and in flight
    subscriber.answer = lambda path, body: (200, b"")
    async with run(app_timeout=30) as duetime:
        # again at once, not when the lease would have run out (sent twice: at least once)
        await wait_for(
            lambda: (
                {g.event["data"]["i"] for g in subscriber.got if g.at > 0} >= {0, 1, 2}
                and len(subscriber.got) >= 6
            ),
            15,
        )


def bearer(user: str) -> dict[str, str]:
    token = issue_token(SECRET, user, ttl=timedelta(hours=1), now=datetime.now(UTC))
    return {"authorization": f"Bearer {token}"}


async def test_task_events_reach_a_dapr_subscriber(run: Run, subscriber: Subscriber) -> None:
    subscriber.subscriptions = [
        {"pubsubname": "pubsub", "topic": "task-events", "route": "/tasks"},
        {"pubsubname": "pubsub", "topic": "reminders", "route": "/reminders"},
    ]
    async with run() as duetime:
        await duetime.discovered()
        due = datetime.now(UTC) + timedelta(seconds=1)
        r = await duetime.http.post(
            "/api/tasks",
            json={"title": "pay", "due_at": due.isoformat(), "reminders": [{"before": "PT0S"}]},
            headers=bearer("alice"),
        )
        assert r.status_code == 201, r.text
        task = (await got(subscriber, "/tasks"))[0].event
        reminder = (await got(subscriber, "/reminders", 1, timeout=30))[0].event
    assert task["type"] == "io.duetime.task.created" and task["source"] == "/duetime/task-events"
    assert task["topic"] == "task-events" and task["pubsubname"] == "pubsub"
    assert task["data"]["title"] == "pay" and task["traceid"] == "" and "time" in task
    assert reminder["type"] == "io.duetime.reminder.due"
    assert reminder["subject"] == f"tasks/{task['data']['task_id']}"


async def test_the_caller_app_is_the_source_and_tokens_are_checked(
    run: Run, subscriber: Subscriber
) -> None:
    subscriber.subscriptions = [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]
    other = Subscriber([])
    apps = {"billing": {"url": other.url, "api_token": "billing-token"}}
    try:
        async with run(api_token="operator-token", apps=apps) as duetime:
            await duetime.discovered()
            assert (await duetime.publish("orders", {"n": 0})).status_code == 401
            r = await duetime.publish(
                "orders", {"n": 1}, headers={"dapr-api-token": "billing-token"}
            )
            assert r.status_code == 204
            r = await duetime.publish(
                "orders",
                {"n": 2},
                headers={"authorization": "Bearer operator-token", "dapr-app-id": "orders-app"},
            )
            assert r.status_code == 204
            r = await duetime.publish(
                "orders",
                {"n": 3},
                headers={"dapr-api-token": "billing-token", "dapr-app-id": "orders-app"},
            )
            assert r.status_code == 403
            received = await got(subscriber, "/orders", 2)
            assert await duetime.messages() == 2
    finally:
        other.close()
    assert sorted((g.event["data"]["n"], g.event["source"]) for g in received) == [
        (1, "billing"),
        (2, "orders-app"),
    ]
