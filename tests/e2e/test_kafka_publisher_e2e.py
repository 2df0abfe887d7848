"""`duetime serve` publishing straight to a real Kafka broker (`DUETIME_EVENT_PUBLISHER=kafka`,
no Dapr): every committed event reaches its topic once, after a kill -9 too; reminders are
still delivered in-process by webhook; the API keeps taking tasks while the broker is away.

What is checked at the broker is read from the broker (offsets and records), not from duetime.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from duetime.auth import issue_token
from tests.brokers import KafkaBroker
from tests.e2e.conftest import Receiver, Server

pytestmark = pytest.mark.brokers

SECRET = "test-secret-for-e2e-0123456789abcdef"
CREATED = "io.duetime.task.created"
DUE = "io.duetime.reminder.due"
DELIVERED = "io.duetime.reminder.delivered"


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def api(server: Server, user: str) -> httpx.Client:
    token = issue_token(SECRET, user, ttl=timedelta(hours=1), now=datetime.now(UTC))
    return httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not in {timeout} s"
        time.sleep(0.2)
    return found


def kafka_server(make_server: Callable[..., Server], broker: KafkaBroker, **env: str) -> Server:
    return make_server(
        DUETIME_JWT_SECRET=SECRET,
        DUETIME_WEBHOOK_ALLOW_PRIVATE="true",
        DUETIME_EVENT_PUBLISHER="kafka",
        DUETIME_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        **env,
    )


def create(client: httpx.Client, title: str, due: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"title": title}
    if due is not None:
        body["due_at"] = iso(due)
    r = client.post("/api/tasks", json=body)
    assert r.status_code == 201, r.text
    task: dict[str, Any] = r.json()
    return task


def of_type(records: list[dict[str, Any]], type_: str, ids: set[str]) -> Counter[str]:
    """How often each task of `ids` has an event of `type_` among the records (by the
    event's subject, `tasks/<id>`)."""
    found = (
        (r["value"]["type"], str(r["value"].get("subject", "")).removeprefix("tasks/"))
        for r in records
    )
    return Counter(task for kind, task in found if kind == type_ and task in ids)


def log_ids(client: httpx.Client, topic: str) -> set[str]:
    r = client.get("/api/events", params={"topic": topic, "limit": 1000})
    assert r.status_code == 200, r.text
    return {e["event"]["id"] for e in r.json()["events"]}


def test_task_and_reminder_events_reach_kafka_once_and_the_webhook_is_sent_in_process(
    make_server: Callable[..., Server], kafka_broker: KafkaBroker, receiver: Receiver
) -> None:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    server = kafka_server(make_server, kafka_broker, DUETIME_KAFKA_TOPIC_PREFIX=prefix).start()
    tasks_topic, reminders_topic = prefix + "task-events", prefix + "reminders"
    with api(server, "alice") as alice:
        r = alice.put(
            "/api/me/channels",
            json={"webhook": {"url": f"{receiver.url}/hooks/alice", "enabled": True}},
        )
        assert r.status_code == 200, r.text
        plain = [create(alice, f"plain {i}") for i in range(10)]
        due = create(alice, "Pay rent", datetime.now(UTC) + timedelta(seconds=1.5))
        ids = {t["id"] for t in [*plain, due]}

        receiver.wait_for(lambda: len(receiver.of("/hooks/alice")) >= 1, timeout=30)
        created = kafka_broker.read(tasks_topic, timeout=60, at_least=11)
        assert of_type(created, CREATED, ids) == Counter(dict.fromkeys(ids, 1))
        for record in created:
            event = record["value"]
            assert record["key"] == event["subject"] == f"tasks/{event['data']['task_id']}"
            assert record["headers"] == {"content-type": "application/cloudevents+json"}
        # the ids at the broker are the ids of duetime's event log
        assert {r["value"]["id"] for r in created} == log_ids(alice, "task-events")

        # the reminder: delivered by duetime itself (no Dapr), its events on `reminders`
        wait_until(
            lambda: of_type(kafka_broker.read(reminders_topic, timeout=30), DELIVERED, {due["id"]}),
            30,
            "reminder.delivered at the broker",
        )
        time.sleep(1.0)  # a second webhook or a second publish would have come by now
        [hook] = receiver.of("/hooks/alice")
        reminders = kafka_broker.read(reminders_topic, timeout=30)
        [due_record] = [r for r in reminders if r["value"]["type"] == DUE]
        assert due_record["value"] == hook.data  # the webhook's CloudEvent, as published
        assert due_record["key"] == f"tasks/{due['id']}"
        [note] = alice.get("/api/notifications").json()["notifications"]
        assert due_record["value"]["id"] == note["id"] == hook.headers["duetime-event-id"]
        assert of_type(reminders, DELIVERED, {due["id"]}) == Counter({due["id"]: 1})
        assert {r["value"]["id"] for r in reminders} == log_ids(alice, "reminders")
        assert kafka_broker.count(tasks_topic) == 11
        # nothing under the names without the prefix came from this server
        assert of_type(kafka_broker.read("task-events", timeout=30), CREATED, ids) == Counter()


def test_events_committed_before_a_kill_9_are_on_kafka_once_after_the_restart(
    make_server: Callable[..., Server], kafka_broker: KafkaBroker
) -> None:
    # The relay is off: events are committed to the outbox and not published, as in a crash
    # between the commit and the publish. Then kill -9, and a restart with the relay on.
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    topic = prefix + "task-events"
    server = kafka_server(
        make_server, kafka_broker, DUETIME_KAFKA_TOPIC_PREFIX=prefix, DUETIME_EVENT_RELAY="false"
    ).start()
    with api(server, "bob") as bob:
        r = bob.post("/api/tasks/batch", json={"tasks": [{"title": f"t{i}"} for i in range(25)]})
        assert r.status_code == 201, r.text
        ids = {t["id"] for t in r.json()["tasks"]}
        one = create(bob, "one more")
        ids.add(one["id"])
        time.sleep(1.5)
        assert kafka_broker.count(topic) == 0  # held in the outbox
        server.kill()

        server._env["DUETIME_EVENT_RELAY"] = "true"
        server.start()
        records = kafka_broker.read(topic, timeout=60, at_least=26)
        time.sleep(1.5)  # a second publish of any of them would have come by now
        records = kafka_broker.read(topic, timeout=30)
        assert of_type(records, CREATED, ids) == Counter(dict.fromkeys(ids, 1))
        assert kafka_broker.count(topic) == 26
        assert {r["value"]["id"] for r in records} == log_ids(bob, "task-events")
        server.stop()
        server.start()  # a clean restart publishes nothing again
        time.sleep(2.0)
        assert kafka_broker.count(topic) == 26


def test_while_the_broker_is_away_tasks_are_taken_and_their_events_follow_once(
    make_server: Callable[..., Server], make_kafka: Callable[..., KafkaBroker], receiver: Receiver
) -> None:
    broker = make_kafka()
    server = kafka_server(make_server, broker).start()
    with api(server, "carol") as carol:
        r = carol.put(
            "/api/me/channels",
            json={"webhook": {"url": f"{receiver.url}/hooks/carol", "enabled": True}},
        )
        assert r.status_code == 200, r.text
        before = {create(carol, f"before {i}")["id"] for i in range(3)}
        broker.read("task-events", timeout=60, at_least=3)

        broker.stop()
        started = time.monotonic()
        during = {create(carol, f"during {i}")["id"] for i in range(8)}
        due = create(carol, "due while away", datetime.now(UTC) + timedelta(seconds=1))
        assert time.monotonic() - started < 10  # the API does not wait for the broker
        # the reminder is delivered in-process: it does not need the broker
        receiver.wait_for(lambda: len(receiver.of("/hooks/carol")) == 1, timeout=30)
        time.sleep(1.0)

        broker.restart()
        ids = before | during | {due["id"]}
        wait_until(
            lambda: (
                sum(of_type(broker.read("task-events", timeout=30), CREATED, ids).values())
                == len(ids)
            ),
            90,
            "every task.created at the broker",
        )
        wait_until(
            lambda: of_type(broker.read("reminders", timeout=30), DELIVERED, {due["id"]}),
            60,
            "reminder.delivered at the broker",
        )
        time.sleep(1.0)
        created = of_type(broker.read("task-events", timeout=30), CREATED, ids)
        assert created == Counter(dict.fromkeys(ids, 1))
        reminders = broker.read("reminders", timeout=30)
        assert of_type(reminders, DUE, {due["id"]}) == Counter({due["id"]: 1})
        assert len(receiver.of("/hooks/carol")) == 1


def test_started_before_the_broker_it_publishes_everything_once_it_is_up(
    make_server: Callable[..., Server], make_kafka: Callable[..., KafkaBroker], tmp_path: Path
) -> None:
    broker = make_kafka()
    broker.stop()  # not up yet when duetime starts (the order of a fresh deployment)
    server = kafka_server(make_server, broker).start()
    with api(server, "dan") as dan:
        ids = {create(dan, f"early {i}")["id"] for i in range(5)}
        time.sleep(3.0)  # the relay tries, and fails, to connect a few times
        broker.restart()
        wait_until(
            lambda: (
                sum(of_type(broker.read("task-events", timeout=30), CREATED, ids).values())
                == len(ids)
            ),
            90,
            "every task.created at the broker",
        )
        time.sleep(1.0)
        created = of_type(broker.read("task-events", timeout=30), CREATED, ids)
        assert created == Counter(dict.fromkeys(ids, 1))
    server.stop()
    # each failed connect must close its client; none is left for the garbage collector
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "Unclosed AIOKafkaProducer" not in log
