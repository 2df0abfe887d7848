"""The event-driven split on real parts, against each broker: the API publishes through its
daprd, the notifier (`duetime worker`) subscribes through its own, over real Redis and real
Kafka, with the chart's Component and Resiliency.

What is checked at the broker is read from the broker itself (Redis `XRANGE`, Kafka offsets),
not from duetime.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.brokers import RedisServer
from tests.e2e.conftest import Receiver, Server
from tests.e2e.pubsub_stack import Broker, BrokerKind, PubSubStack
from tests.e2e.test_dapr_e2e import Up, _read, wait_for
from tests.e2e.test_tasks_e2e import SECRET, User, iso

pytestmark = pytest.mark.brokers
ROOT = Path(__file__).resolve().parents[2]
KINDS: list[BrokerKind] = ["redis", "kafka"]
DUE = "io.duetime.reminder.due"


def session_broker(request: pytest.FixtureRequest, kind: BrokerKind) -> Broker:
    fixture = "redis_server" if kind == "redis" else "kafka_broker"
    broker: Broker = request.getfixturevalue(fixture)
    return broker


def own_broker(request: pytest.FixtureRequest, kind: BrokerKind) -> Broker:
    make: Callable[[], Broker] = request.getfixturevalue(
        "make_redis" if kind == "redis" else "make_kafka"
    )
    return make()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> BrokerKind:
    found: BrokerKind = request.param
    return found


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., PubSubStack]]:
    stacks: list[PubSubStack] = []

    def make(kind: BrokerKind, broker: Broker, **options: Any) -> PubSubStack:
        stack = PubSubStack(tmp_path / f"stack{len(stacks)}", kind, broker, **options)
        stacks.append(stack)
        try:
            return stack.start()
        except Exception:
            print(stack.logs())
            raise

    yield make
    for stack in stacks:
        stack.close()


def due_in(user: User, count: int, seconds: float, title: str = "Pay rent") -> list[dict]:
    due = datetime.now(UTC) + timedelta(seconds=seconds)
    r = user.http.post(
        "/api/tasks/batch",
        json={"tasks": [{"title": f"{title} {i}", "due_at": iso(due)} for i in range(count)]},
    )
    assert r.status_code in (200, 201), r.text
    found: list[dict] = r.json()["tasks"]
    return found


def hooks_by_notification(receiver: Receiver, name: str) -> Counter[str]:
    return Counter(json.loads(h.body)["id"] for h in receiver.of(f"/hooks/{name}"))


def of_tasks(events: list[dict[str, Any]], task_ids: set[str], type_: str) -> Counter[str]:
    """How often each of `task_ids` has an event of `type_` among `events`."""
    return Counter(
        e["data"]["task_id"]
        for e in events
        if e.get("type") == type_ and e.get("data", {}).get("task_id") in task_ids
    )


def test_reminders_go_through_the_broker_to_the_worker_and_out_once(
    request: pytest.FixtureRequest,
    kind: BrokerKind,
    make_stack: Callable[..., PubSubStack],
    receiver: Receiver,
) -> None:
    stack = make_stack(kind, session_broker(request, kind))
    alice = stack.user("alice", receiver)
    tasks = due_in(alice, 20, 3)
    ids = {t["id"] for t in tasks}
    try:
        receiver.wait_for(lambda: len(receiver.of("/hooks/alice")) >= 20, timeout=60)
    except AssertionError:
        print(stack.logs())
        raise
    time.sleep(1.0)  # a second webhook for any of them would have come by now
    hooks = receiver.of("/hooks/alice")
    assert len(hooks) == 20
    by_id = {json.loads(h.body)["data"]["task_id"]: h for h in hooks}
    assert set(by_id) == ids
    for hook in hooks:
        event = json.loads(hook.body)
        # duetime's CloudEvent, not the sidecar's envelope
        assert set(event) == {
            "specversion", "id", "source", "type", "time", "datacontenttype", "subject", "data"
        }  # fmt: skip
        assert event["type"] == DUE and event["id"] == event["data"]["notification_id"]
        assert hook.headers["duetime-event-id"] == event["id"]
        assert datetime.fromisoformat(event["data"]["fired_at"]) >= datetime.fromisoformat(
            event["data"]["scheduled_for"]
        )

    # at the broker: each task.created and each reminder.due once, with duetime's ids
    def published() -> bool:
        return (
            sum(of_tasks(stack.events("reminders"), ids, DUE).values()) == 20
            and sum(of_tasks(stack.events("task-events"), ids, "io.duetime.task.created").values())
            == 20
        )

    wait_for(published, 30, "every event at the broker")
    assert set(of_tasks(stack.events("reminders"), ids, DUE).values()) == {1}
    notes = {n["id"] for n in alice.inbox()}
    due_ids = {e["id"] for e in stack.events("reminders") if e.get("type") == DUE}
    assert notes <= due_ids
    # the API process sends nothing itself: every attempt was the worker's
    assert "POST /dapr/pubsub/reminder-due" not in _read(stack.api.log)
    assert "POST /dapr/pubsub/reminder-due" in _read(stack.worker.log)


def test_events_committed_before_a_kill_9_are_published_after_restart(
    request: pytest.FixtureRequest,
    kind: BrokerKind,
    make_stack: Callable[..., PubSubStack],
    receiver: Receiver,
) -> None:
    # The API's relay is off: events are committed to the outbox and never published, as in
    # a crash between commit and publish. Then kill -9 and a normal restart.
    held = {"DUETIME_EVENT_RELAY": "false"}
    stack = make_stack(kind, session_broker(request, kind), extra_env=held)
    bob = stack.user("bob", receiver)
    tasks = due_in(bob, 10, 4)
    ids = {t["id"] for t in tasks}
    time.sleep(1.0)
    assert not of_tasks(stack.events("task-events"), ids, "io.duetime.task.created")
    stack.api.server.kill()
    stack.api.server._env["DUETIME_EVENT_RELAY"] = "true"
    stack.api.server.start()

    def all_there() -> bool:
        found = of_tasks(stack.events("task-events"), ids, "io.duetime.task.created")
        return sum(found.values()) == 10

    wait_for(all_there, 30, "the committed events at the broker")
    receiver.wait_for(lambda: len(receiver.of("/hooks/bob")) >= 10, timeout=60)
    time.sleep(1.0)
    created = of_tasks(stack.events("task-events"), ids, "io.duetime.task.created")
    assert set(created.values()) == {1}
    assert set(hooks_by_notification(receiver, "bob").values()) == {1}


def test_worker_killed_9_mid_stream_delivers_every_reminder_once_per_channel(
    request: pytest.FixtureRequest,
    kind: BrokerKind,
    make_stack: Callable[..., PubSubStack],
    receiver: Receiver,
) -> None:
    stack = make_stack(kind, session_broker(request, kind))
    carol = stack.user("carol", receiver)
    # due one after another over 6 s; the receiver never answers the first 3 webhooks, so
    # those are on the wire when the worker dies, while later reminders are still to come
    start = datetime.now(UTC) + timedelta(seconds=3)
    tasks = [
        {"title": f"t{i}", "due_at": iso(start + timedelta(seconds=0.2 * i))} for i in range(30)
    ]
    r = carol.http.post("/api/tasks/batch", json={"tasks": tasks})
    assert r.status_code == 201, r.text
    receiver.hold_first = 3
    receiver.wait_for(lambda: len(receiver.of("/hooks/carol")) >= 10, timeout=60)
    stack.worker.server.kill()
    sent_before = {json.loads(h.body)["id"] for h in receiver.of("/hooks/carol")}
    assert len(hooks_by_notification(receiver, "carol")) < 30
    time.sleep(1.0)
    stack.worker.server.start()
    try:
        receiver.wait_for(lambda: len(hooks_by_notification(receiver, "carol")) == 30, timeout=90)
    except AssertionError:
        print(stack.logs())
        raise

    def settled() -> list[dict[str, Any]] | None:
        r = carol.http.get("/api/deliveries", params={"limit": 100})
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()["deliveries"]
        return found if {d["state"] for d in found} == {"delivered"} else None

    deliveries = wait_for(settled, 60, "every delivery delivered")
    assert len(deliveries) == 30
    sends = hooks_by_notification(receiver, "carol")
    assert len(sends) == 30
    # Each reminder reached the webhook once, except those the worker had on the wire when it
    # died: their sends were never acknowledged, so they are sent again, with the same
    # idempotency key (one delivery), which a receiver dedupes on (docs/howto/webhooks.md).
    again = {note for note, n in sends.items() if n > 1}
    assert again <= sent_before and all(n <= 2 for n in sends.values())
    keys: dict[str, set[str]] = {}
    for h in receiver.of("/hooks/carol"):
        keys.setdefault(json.loads(h.body)["id"], set()).add(h.headers["idempotency-key"])
    assert all(len(k) == 1 for k in keys.values())


def test_broker_stopped_for_a_while_loses_nothing(
    request: pytest.FixtureRequest,
    kind: BrokerKind,
    make_stack: Callable[..., PubSubStack],
    receiver: Receiver,
) -> None:
    broker = own_broker(request, kind)
    stack = make_stack(kind, broker, retries=40)
    dave = stack.user("dave", receiver)
    due_in(dave, 5, 1)
    receiver.wait_for(lambda: len(receiver.of("/hooks/dave")) == 5, timeout=60)
    broker.stop()
    tasks = due_in(dave, 10, 2)  # written while the broker is down; due while it is down
    time.sleep(3.5)
    assert len(receiver.of("/hooks/dave")) == 5
    broker.restart()
    try:
        receiver.wait_for(lambda: len(hooks_by_notification(receiver, "dave")) == 15, timeout=120)
    except AssertionError:
        print(stack.logs())
        raise
    time.sleep(1.0)
    assert set(hooks_by_notification(receiver, "dave").values()) == {1}
    ids = {t["id"] for t in tasks}
    wait_for(
        lambda: sum(of_tasks(stack.events("reminders"), ids, DUE).values()) == 10,
        30,
        "the held events at the broker",
    )
    assert set(of_tasks(stack.events("reminders"), ids, DUE).values()) == {1}


def test_poison_event_goes_to_the_dead_letter_topic_and_can_be_replayed(
    request: pytest.FixtureRequest,
    kind: BrokerKind,
    make_stack: Callable[..., PubSubStack],
    receiver: Receiver,
) -> None:
    stack = make_stack(kind, session_broker(request, kind), retries=3, interval="200ms")
    erin = stack.user("erin", receiver)
    poison = {
        "specversion": "1.0",
        "id": f"poison-{kind}-{time.time_ns()}",
        "source": "/somebody/else",
        "type": DUE,
        "datacontenttype": "application/json",
        "data": {"title": "no notification, no user"},
    }
    assert stack.publish("reminders", poison).status_code == 204
    admin = httpx.Client(base_url=stack.worker.server.url, timeout=30)

    def dead() -> list[dict[str, Any]]:
        r = admin.get("/v1.0/pubsub/deadletters", params={"replayed": "true"})
        assert r.status_code == 200, r.text
        return [d for d in r.json()["deadLetters"] if d["eventId"] == poison["id"]]

    try:
        [letter] = wait_for(dead, 60, "the poison event in the dead letters")
    except AssertionError:
        print(stack.logs())
        raise
    assert letter["topic"] == "reminders" and letter["pubsub"] == "pubsub"
    assert letter["type"] == DUE and letter["times"] == 1 and letter["replays"] == 0
    assert letter["event"]["data"] == poison["data"]
    # it is on the dead-letter topic at the broker too
    assert [e for e in stack.events("reminders-dead") if e.get("id") == poison["id"]]
    # a good reminder is not held up by it
    due_in(erin, 1, 1)
    receiver.wait_for(lambda: len(receiver.of("/hooks/erin")) == 1, timeout=60)

    # replayed, it is published to `reminders` again; still poison, it comes back
    r = admin.post(f"/v1.0/pubsub/deadletters/{letter['id']}/replay")
    assert r.status_code == 200, r.text
    assert r.json()["replays"] == 1 and r.json()["replayedTime"] is not None
    wait_for(lambda: dead()[0]["times"] == 2, 60, "the replayed poison event back")
    again = dead()[0]
    assert again["replays"] == 1 and again["replayedTime"] is None
    assert len([e for e in stack.events("reminders") if e.get("id") == poison["id"]]) == 2
    # an operator can discard it; unknown ids get a 404 with a code
    assert admin.delete(f"/v1.0/pubsub/deadletters/{letter['id']}").status_code == 204
    assert dead() == []
    r = admin.post(f"/v1.0/pubsub/deadletters/{letter['id']}/replay")
    assert r.status_code == 404 and r.json()["errorCode"] == "DUETIME_DEAD_LETTER_NOT_FOUND"
    admin.close()


@pytest.mark.postgres
def test_two_worker_replicas_never_send_a_webhook_twice(
    request: pytest.FixtureRequest,
    kind: BrokerKind,
    make_stack: Callable[..., PubSubStack],
    receiver: Receiver,
    postgres_url: str,
) -> None:
    stack = make_stack(kind, session_broker(request, kind), workers=2, database_url=postgres_url)
    frank = stack.user("frank", receiver)
    due_in(frank, 60, 3)
    try:
        receiver.wait_for(lambda: len(receiver.of("/hooks/frank")) >= 60, timeout=90)
    except AssertionError:
        print(stack.logs())
        raise
    time.sleep(2.0)
    sends = hooks_by_notification(receiver, "frank")
    assert len(sends) == 60 and set(sends.values()) == {1}


def test_the_local_recipe_runs_reminders_through_redis_in_one_process(
    redis_server: RedisServer, tmp_path: Path, receiver: Receiver
) -> None:
    """docs/explanation/events.md, "Running it locally": its helm commands as written (the
    Redis address swapped for the test's), `duetime dapr up --resources`, and duetime with the
    environment the recipe gives (`duetime serve` for `./scripts/run.sh`, which would install)."""
    text = (ROOT / "docs" / "explanation" / "events.md").read_text()
    section = text.split("## Running it locally", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)
    lines = block.strip().splitlines()
    # the helm lines; the docs test (test_docs_examples.py) runs the whole block as written
    render = [
        line
        for line in lines
        if not line.startswith((".venv/", "DUETIME_", "redis-server", "until ", "curl "))
    ]
    assert len(render) == 4 and render[0] == "mkdir -p dapr-resources"
    work = tmp_path / "recipe"
    work.mkdir()
    for name in ("deploy", "scripts"):
        (work / name).symlink_to(ROOT / name)
    script = "\n".join(render).replace("127.0.0.1:6379", redis_server.address)
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, check=True, timeout=300)
    assert {p.name for p in (work / "dapr-resources").iterdir()} == {
        "pubsub.yaml",
        "resiliency.yaml",
    }

    [up_line] = [line for line in lines if line.startswith(".venv/bin/duetime dapr up")]
    assert up_line == ".venv/bin/duetime dapr up --resources dapr-resources &"
    up = Up(tmp_path / "data", tmp_path / "up.log")
    up.extra_args = ["--resources", str(work / "dapr-resources")]
    [run_line] = [line for line in lines if line.startswith("DUETIME_")]
    env = dict(pair.split("=", 1) for pair in run_line.split() if "=" in pair)  # not the "&"
    assert env == {"DUETIME_SCHEDULER": "dapr", "DUETIME_EVENT_PUBLISHER": "dapr"}
    server = Server(
        {
            **env,
            "DUETIME_DATA_DIR": str(tmp_path / "data"),
            "DUETIME_JWT_SECRET": SECRET,
            "DUETIME_WEBHOOK_ALLOW_PRIVATE": "true",
            "DUETIME_DAPR_HTTP_ENDPOINT": f"http://127.0.0.1:{up.ports['http']}",
        },
        tmp_path / "server.log",
        port=up.ports["app"],
    )
    user: User | None = None
    try:
        assert "resources  pubsub.yaml, resiliency.yaml" in up.start()
        server.start()
        user = User(server, "gina")
        r = user.http.put(
            "/api/me/channels",
            json={"webhook": {"url": f"{receiver.url}/hooks/gina", "enabled": True}},
        )
        assert r.status_code == 200, r.text
        [task] = due_in(user, 1, 2)
        receiver.wait_for(lambda: len(receiver.of("/hooks/gina")) == 1, timeout=60)
        with redis_server.client() as client:
            on_redis = [json.loads(f[b"data"]) for _, f in client.xrange("reminders")]
        assert of_tasks(on_redis, {task["id"]}, DUE) == {task["id"]: 1}
        assert "POST /dapr/pubsub/reminder-due" in (tmp_path / "server.log").read_text()
    finally:
        if user is not None:
            user.http.close()
        server.stop()
        up.close()
