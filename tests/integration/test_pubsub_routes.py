"""The app side of Dapr pub/sub, driven in-process (httpx's ASGI transport, the app's lifespan
run) on a real SQLite file: the subscriptions each role asks for, the `reminder.due` route
that writes a reminder's deliveries once however often the event arrives, its answers to
events it cannot take, the app token, the dead-letter route and the operator's API, and what
a worker process does not serve.

No daprd runs: what daprd would POST is POSTed here, and the relay's publishes go to a closed
port (they fail and are retried, which these routes do not depend on). The API and worker
processes of a split deployment are two apps on one database file, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from duetime.api.pubsub import subscriptions
from duetime.app import create_app
from duetime.auth import issue_token
from duetime.db.engine import create_engine, prepare
from duetime.delivery.outbox import CLOUD_EVENT_KEYS, due_event
from duetime.settings import Settings
from duetime.timefmt import format_rfc3339
from tests.conftest import free_port
from tests.e2e.conftest import Receiver
from tests.smtp import SmtpServer

SECRET = "routes-secret-0123456789abcdef012345"
DUE = "io.duetime.reminder.due"
SIDECAR = {
    "topic": "reminders",
    "pubsubname": "pubsub",
    "traceid": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "",
}
Run = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server that records the webhooks it gets."""
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings of one deployment: every process on the same SQLite file, Dapr pub/sub, a
    daprd that is not there."""
    closed = f"http://127.0.0.1:{free_port()}"

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": f"sqlite:///{tmp_path}/duetime.db",
            "event_publisher": "dapr",
            "dapr_http_endpoint": closed,
            "jwt_secret": SECRET,
            "webhook_allow_private": True,
            "access_log": False,
        }
        return Settings(**{**base, **overrides})

    return make


@pytest.fixture
def run(make_settings: Callable[..., Settings]) -> Run:
    """`async with run(**settings) as client`: a duetime app started (its lifespan), and an
    HTTP client for it; the database is migrated first, as `duetime serve`/`worker` do."""

    @contextlib.asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = make_settings(**overrides)
        await prepare(settings.resolved_database_url())
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://duetime", timeout=30
            ) as client:
                yield client
        # A connection whose task was cancelled at shutdown is closed by SQLAlchemy in a
        # task of its own: let it run before the test's event loop is closed.
        await asyncio.sleep(0.2)

    return running


def bearer(user: str) -> dict[str, str]:
    token = issue_token(SECRET, user, ttl=timedelta(hours=1), now=datetime.now(UTC))
    return {"authorization": f"Bearer {token}"}


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return found


async def post_event(client: httpx.AsyncClient, path: str, body: Any, **headers: str) -> Any:
    """POST as daprd does (a structured CloudEvent); the answer must be 200 with a status."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = await client.post(
        path, content=content, headers={"content-type": "application/cloudevents+json", **headers}
    )
    assert r.status_code == 200, r.text
    return r.json()


def foreign_due(note_id: str = "no-such-notification") -> dict[str, Any]:
    """A well-formed `reminder.due` for a notification this database never had."""
    at = datetime.now(UTC)
    us = int(at.timestamp() * 1_000_000)
    note = {
        "id": note_id,
        "user_id": "alice",
        "task_id": "no-such-task",
        "reminder_id": "no-such-reminder",
        "title": "gone",
        "message": "",
        "scheduled_us": us,
        "fired_us": us,
        "lateness_ms": 0,
    }
    return {**due_event(note).body, **SIDECAR}


# -- subscriptions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "subscribed"),
    [
        ({"role": "worker"}, True),
        ({"role": "all"}, True),
        ({"role": "api"}, False),
        ({"event_publisher": "embedded"}, False),
        ({"event_publisher": "kafka", "kafka_bootstrap_servers": "127.0.0.1:9"}, False),
    ],
    ids=["worker", "all-dapr", "api", "all-embedded", "all-kafka"],
)
async def test_subscribe_lists_the_subscriptions_where_the_notifier_runs_on_dapr(
    run: Run, settings: dict[str, Any], subscribed: bool
) -> None:
    async with run(**settings) as client:
        r = await client.get("/dapr/subscribe")
    assert r.status_code == 200, r.text
    assert r.json() == (subscriptions("pubsub", "reminders-dead") if subscribed else [])


async def test_subscribe_uses_the_configured_component_and_dead_letter_topic(run: Run) -> None:
    async with run(role="worker", pubsub_name="kafka-pubsub", dead_letter_topic="dlq") as client:
        found = (await client.get("/dapr/subscribe")).json()
    assert found == subscriptions("kafka-pubsub", "dlq")
    assert [s["topic"] for s in found] == ["reminders", "dlq"]
    assert found[0]["deadLetterTopic"] == "dlq"


# -- reminder.due: the fan-out ----------------------------------------------------------------


async def test_a_due_event_writes_one_delivery_per_channel_however_often_it_arrives(
    run: Run, receiver: Receiver, smtp_server: SmtpServer
) -> None:
    smtp = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "smtp_security": "none",
        "smtp_from": "reminders@duetime.test",
    }
    async with run(role="api", **smtp) as api, run(role="worker", **smtp) as worker:
        alice = bearer("alice")
        r = await api.put(
            "/api/me/channels",
            headers=alice,
            json={
                "webhook": {"url": f"{receiver.url}/hooks/alice", "enabled": True},
                "email": {"address": "alice@example.com", "enabled": True},
            },
        )
        assert r.status_code == 200, r.text
        due = datetime.now(UTC) + timedelta(milliseconds=300)
        r = await api.post(
            "/api/tasks", headers=alice, json={"title": "Pay rent", "due_at": format_rfc3339(due)}
        )
        assert r.status_code == 201, r.text
        task = r.json()

        async def due_events() -> list[dict[str, Any]]:
            r = await api.get("/api/events", headers=alice, params={"topic": "reminders"})
            return [e["event"] for e in r.json()["events"] if e["event"]["type"] == DUE]

        [event] = await until(due_events)
        [note] = (await api.get("/api/notifications", headers=alice)).json()["notifications"]
        assert event["id"] == note["id"] == event["data"]["notification_id"]
        assert event["data"]["task_id"] == task["id"]

        async def deliveries() -> list[dict[str, Any]]:
            r = await api.get("/api/deliveries", headers=alice, params={"limit": 100})
            assert r.status_code == 200, r.text
            found: list[dict[str, Any]] = r.json()["deliveries"]
            return found

        # The API process does not fan out on Dapr pub/sub: the worker does, from the event.
        await asyncio.sleep(0.3)
        assert await deliveries() == []

        delivered = {**event, **SIDECAR}
        assert await post_event(worker, "/dapr/pubsub/reminder-due", delivered) == {
            "status": "SUCCESS"
        }
        written = await deliveries()
        assert sorted(d["channel"] for d in written) == ["email", "webhook"]
        assert {d["event_id"] for d in written} == {event["id"]}

        # redelivered, once and then many times at once: nothing more is written or sent
        assert (await post_event(worker, "/dapr/pubsub/reminder-due", delivered))["status"] == (
            "SUCCESS"
        )
        answers = await asyncio.gather(
            *(post_event(worker, "/dapr/pubsub/reminder-due", delivered) for _ in range(8))
        )
        assert answers == [{"status": "SUCCESS"}] * 8
        assert sorted(d["id"] for d in await deliveries()) == sorted(d["id"] for d in written)

        await asyncio.to_thread(receiver.wait_for, lambda: len(receiver.of("/hooks/alice")) >= 1)
        await asyncio.to_thread(smtp_server.wait_for, lambda: len(smtp_server.messages) >= 1)

        async def both_delivered() -> bool:
            return {d["state"] for d in await deliveries()} == {"delivered"}

        await until(both_delivered)
        await asyncio.sleep(0.5)
        [hook] = receiver.of("/hooks/alice")
        assert len(smtp_server.messages) == 1
        # the webhook carries duetime's event, not the sidecar's attributes
        assert hook.data == event and set(hook.data) == set(CLOUD_EVENT_KEYS)
        assert hook.headers["duetime-event-id"] == event["id"]


async def test_a_due_event_on_role_all_with_dapr_fans_out_in_the_same_process(
    run: Run, receiver: Receiver
) -> None:
    async with run(role="all") as client:
        bob = bearer("bob")
        r = await client.put(
            "/api/me/channels",
            headers=bob,
            json={"webhook": {"url": f"{receiver.url}/hooks/bob", "enabled": True}},
        )
        assert r.status_code == 200, r.text
        due = datetime.now(UTC) + timedelta(milliseconds=200)
        r = await client.post(
            "/api/tasks", headers=bob, json={"title": "Call", "due_at": format_rfc3339(due)}
        )
        assert r.status_code == 201, r.text

        async def due_events() -> list[dict[str, Any]]:
            r = await client.get("/api/events", headers=bob, params={"topic": "reminders"})
            return [e["event"] for e in r.json()["events"] if e["event"]["type"] == DUE]

        [event] = await until(due_events)
        await asyncio.sleep(0.3)
        assert (await client.get("/api/deliveries", headers=bob)).json()["deliveries"] == []
        answer = await post_event(client, "/dapr/pubsub/reminder-due", {**event, **SIDECAR})
        assert answer == {"status": "SUCCESS"}
        [delivery] = (await client.get("/api/deliveries", headers=bob)).json()["deliveries"]
        assert delivery["channel"] == "webhook" and delivery["event_id"] == event["id"]


async def test_a_due_event_whose_notification_is_gone_is_dropped(run: Run) -> None:
    async with run(role="worker") as worker:
        answer = await post_event(worker, "/dapr/pubsub/reminder-due", foreign_due())
    assert answer == {"status": "DROP"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b"\xff\xfe",
        b"[]",
        b'"reminder.due"',
        b"null",
        b"42",
        {"type": "io.duetime.reminder.delivered", "id": "x", "data": {}},
        {**foreign_due(), "type": "com.example.other"},
        {k: v for k, v in foreign_due().items() if k != "data"},
        {**foreign_due(), "data": "text"},
        {**foreign_due(), "id": "another-id"},
        {**foreign_due(), "data": {**foreign_due()["data"], "fired_at": "yesterday"}},
        {**foreign_due(), "data": {**foreign_due()["data"], "user_id": 7}},
    ],
    ids=[
        "empty",
        "not-json",
        "truncated",
        "not-utf8",
        "array",
        "string",
        "null",
        "number",
        "delivered-type",
        "foreign-type",
        "no-data",
        "data-not-object",
        "id-not-notification",
        "bad-fired-at",
        "user-not-string",
    ],
)
async def test_an_event_that_cannot_be_a_due_event_is_retried_never_a_500(
    run: Run, body: Any
) -> None:
    # RETRY (not DROP): after the component's retries it reaches the dead-letter topic
    async with run(role="worker") as worker:
        assert await post_event(worker, "/dapr/pubsub/reminder-due", body) == {"status": "RETRY"}


@pytest.mark.parametrize("settings", [{"role": "api"}, {"event_publisher": "embedded"}])
async def test_a_due_event_sent_to_a_process_without_the_subscriber_is_retried(
    run: Run, settings: dict[str, Any]
) -> None:
    async with run(**settings) as client:
        answer = await post_event(client, "/dapr/pubsub/reminder-due", foreign_due())
    assert answer == {"status": "RETRY"}


async def test_the_other_reminder_events_need_nothing(run: Run) -> None:
    async with run(role="worker") as worker:
        delivered = {**foreign_due(), "type": "io.duetime.reminder.delivered"}
        assert await post_event(worker, "/dapr/pubsub/reminders", delivered) == {
            "status": "SUCCESS"
        }
        assert (await worker.get("/v1.0/pubsub/deadletters")).json() == {"deadLetters": []}


# -- the app token -------------------------------------------------------------------------


async def test_with_an_app_token_every_dapr_route_needs_it(run: Run) -> None:
    calls: list[tuple[str, str, bytes | None]] = [
        ("GET", "/dapr/subscribe", None),
        ("POST", "/dapr/pubsub/reminder-due", json.dumps(foreign_due()).encode()),
        ("POST", "/dapr/pubsub/reminders", b"{}"),
        ("POST", "/dapr/pubsub/dead-letters", json.dumps(foreign_due("dead-1")).encode()),
    ]
    async with run(role="worker", app_api_token="app-token-1") as worker:
        for method, path, body in calls:
            for headers in ({}, {"dapr-api-token": "wrong"}, {"dapr-api-token": ""}):
                r = await worker.request(method, path, content=body, headers=headers)
                assert r.status_code == 401, (path, headers, r.text)
                assert r.json()["errorCode"] == "ERR_UNAUTHORIZED"
        # nothing was taken without the token
        assert (await worker.get("/v1.0/pubsub/deadletters")).json() == {"deadLetters": []}
        good = {"dapr-api-token": "app-token-1"}
        for method, path, body in calls:
            r = await worker.request(method, path, content=body, headers=good)
            assert r.status_code == 200, (path, r.text)
        assert len((await worker.get("/v1.0/pubsub/deadletters")).json()["deadLetters"]) == 1


# -- dead letters --------------------------------------------------------------------------


async def test_dead_letters_are_kept_listed_counted_and_discarded(run: Run) -> None:
    poison = {
        "specversion": "1.0",
        "id": "poison-1",
        "source": "/somebody/else",
        "type": DUE,
        "datacontenttype": "application/json",
        "data": {"title": "no notification"},
    }
    as_dead = {**poison, "topic": "reminders-dead", "pubsubname": "pubsub"}
    async with run(role="worker") as worker:
        ok = await post_event(worker, "/dapr/pubsub/dead-letters", as_dead)
        assert ok == {"status": "SUCCESS"}
        [letter] = (await worker.get("/v1.0/pubsub/deadletters")).json()["deadLetters"]
        assert letter["eventId"] == "poison-1" and letter["type"] == DUE
        assert letter["topic"] == "reminders"  # where it was published, not the dead topic
        assert letter["pubsub"] == "pubsub"
        assert letter["event"] == as_dead
        assert letter["times"] == 1 and letter["replays"] == 0
        assert letter["replayedTime"] is None
        assert letter["firstTime"] == letter["lastTime"]

        # the same event again (a replay that failed too) counts once more
        assert (await post_event(worker, "/dapr/pubsub/dead-letters", as_dead))["status"] == (
            "SUCCESS"
        )
        [again] = (await worker.get("/v1.0/pubsub/deadletters")).json()["deadLetters"]
        assert again["id"] == letter["id"] and again["times"] == 2

        # what is not a JSON object is kept too, for an operator to see
        assert (await post_event(worker, "/dapr/pubsub/dead-letters", b"\x00junk"))[
            "status"
        ] == "SUCCESS"
        letters = (await worker.get("/v1.0/pubsub/deadletters")).json()["deadLetters"]
        assert len(letters) == 2
        [junk] = [d for d in letters if d["id"] != letter["id"]]
        assert junk["event"] == {"data": "\x00junk"} and junk["topic"] == "reminders"
        limited = await worker.get("/v1.0/pubsub/deadletters", params={"limit": 1})
        assert [d["id"] for d in limited.json()["deadLetters"]] == [letters[0]["id"]]

        # replay: the broker (daprd, not running) does not take it, and nothing changes
        r = await worker.post(f"/v1.0/pubsub/deadletters/{letter['id']}/replay")
        assert r.status_code == 502, r.text
        assert r.json()["errorCode"] == "DUETIME_REPLAY_FAILED"
        [kept] = [
            d
            for d in (await worker.get("/v1.0/pubsub/deadletters")).json()["deadLetters"]
            if d["id"] == letter["id"]
        ]
        assert kept["replays"] == 0 and kept["replayedTime"] is None

        r = await worker.delete(f"/v1.0/pubsub/deadletters/{junk['id']}")
        assert r.status_code == 204
        letters = (await worker.get("/v1.0/pubsub/deadletters")).json()["deadLetters"]
        assert [d["id"] for d in letters] == [letter["id"]]
        r = await worker.delete(f"/v1.0/pubsub/deadletters/{junk['id']}")
        assert r.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1.0/pubsub/deadletters/no-such-id/replay"),
        ("DELETE", "/v1.0/pubsub/deadletters/no-such-id"),
    ],
)
async def test_unknown_dead_letters_are_404_with_a_code(run: Run, method: str, path: str) -> None:
    async with run(role="worker") as worker:
        r = await worker.request(method, path)
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["errorCode"] == "DUETIME_DEAD_LETTER_NOT_FOUND"
    assert "no-such-id" in body["message"]
    assert body["details"][0]["reason"] == "DUETIME_DEAD_LETTER_NOT_FOUND"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"limit": -1}])
async def test_a_bad_dead_letter_limit_is_a_400_with_the_error_body(
    run: Run, params: dict[str, Any]
) -> None:
    async with run(role="worker") as worker:
        r = await worker.get("/v1.0/pubsub/deadletters", params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"errorCode", "message", "details"}
    assert body["errorCode"] == "ERR_MALFORMED_REQUEST" and "limit" in body["message"]
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "domain": "dapr.io",
            "reason": "ERR_MALFORMED_REQUEST",
            "metadata": {},
        }
    ]


async def test_with_an_api_token_the_dead_letter_api_needs_it(run: Run) -> None:
    async with run(role="worker", api_token="admin-token-1") as worker:
        # daprd does not send the API token: the pub/sub routes do not need it
        assert (await post_event(worker, "/dapr/pubsub/dead-letters", foreign_due("d-2")))[
            "status"
        ] == "SUCCESS"
        calls = [
            ("GET", "/v1.0/pubsub/deadletters"),
            ("POST", "/v1.0/pubsub/deadletters/x/replay"),
            ("DELETE", "/v1.0/pubsub/deadletters/x"),
        ]
        for method, path in calls:
            for headers in (
                {},
                {"dapr-api-token": "wrong"},
                {"authorization": "Bearer wrong"},
                {"authorization": "admin-token-1"},
            ):
                r = await worker.request(method, path, headers=headers)
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.json()["errorCode"] == "ERR_UNAUTHORIZED"
        for headers in (
            {"dapr-api-token": "admin-token-1"},
            {"authorization": "Bearer admin-token-1"},
        ):
            r = await worker.get("/v1.0/pubsub/deadletters", headers=headers)
            assert r.status_code == 200, r.text
            assert [d["eventId"] for d in r.json()["deadLetters"]] == ["d-2"]
        r = await worker.delete(
            "/v1.0/pubsub/deadletters/x", headers={"dapr-api-token": "admin-token-1"}
        )
        assert r.status_code == 404


# -- what a worker serves ----------------------------------------------------------------------


async def test_a_worker_serves_health_and_pubsub_but_not_the_task_or_jobs_api(run: Run) -> None:
    async with run(role="worker") as worker:
        assert (await worker.get("/healthz")).status_code == 204
        assert (await worker.get("/readyz")).status_code == 204
        alice = bearer("alice")
        not_served = [
            ("GET", "/api/tasks", alice),
            ("POST", "/api/tasks", alice),
            ("GET", "/api/notifications", alice),
            ("GET", "/api/events", alice),
            ("GET", "/api/me/channels", alice),
            ("GET", "/v1.0/jobs", {}),
            ("GET", "/v1.0-alpha1/jobs/some-job", {}),
            ("POST", "/v1.0-alpha1/jobs/some-job", {}),
            ("GET", "/v1.0/deadletters", {}),
            ("POST", "/job/some-job", {}),
        ]
        for method, path, headers in not_served:
            r = await worker.request(method, path, headers=headers, json={"title": "x"})
            assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert (await worker.get("/dapr/subscribe")).status_code == 200
        assert (await worker.get("/v1.0/pubsub/deadletters")).status_code == 200


async def _sessions(url: str) -> int:
    """Sessions other than this one on the database of `url`."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await engine.dispose()
    return int(found or 0)


@pytest.mark.postgres
@pytest.mark.parametrize("role", ["all", "api", "worker"])
async def test_a_process_that_shuts_down_closes_its_database_connections(
    run: Run, postgres_url: str, role: str
) -> None:
    async with run(role=role, database_url=postgres_url) as client:
        assert (await client.get("/readyz")).status_code == 204
        assert (await client.get("/v1.0/pubsub/deadletters")).status_code == 200
        await asyncio.sleep(1.0)  # every loop idle: nothing is cut off mid-query
        assert await _sessions(postgres_url) >= 1
    for _ in range(50):  # a closed session leaves pg_stat_activity within moments
        if not (left := await _sessions(postgres_url)):
            break
        await asyncio.sleep(0.1)
    assert left == 0, f"role {role}: {left} database sessions still open after shutdown"
