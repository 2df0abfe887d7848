"""Dapr pub/sub on a real `duetime serve` process, with no Dapr installed: real subscriber
app processes (a `dapr-ext-fastapi` `DaprApp` and a plain `/dapr/subscribe` app) and the
official SDK's `DaprClient().publish_event` (gRPC, as the SDK does it) in a process of its
own, pointed at duetime's ports. The apps start after duetime, as they may in real life.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from duetime.auth import issue_token
from tests.conftest import free_port
from tests.e2e.conftest import Server
from tests.e2e.test_tasks_e2e import iso

ROOT = Path(__file__).resolve().parents[2]

DAPR_APP = textwrap.dedent(
    """
    import json, sys, time
    import uvicorn
    from fastapi import FastAPI
    from dapr.ext.fastapi import DaprApp
    from pydantic import BaseModel

    port, log = int(sys.argv[1]), sys.argv[2]
    app = FastAPI()
    dapr_app = DaprApp(app)

    class CloudEvent(BaseModel):
        model_config = {"extra": "allow"}

    @dapr_app.subscribe(pubsub="pubsub", topic="orders", dead_letter_topic="orders-dead")
    def orders(event: dict) -> dict:
        with open(log, "a") as out:
            out.write(json.dumps({"path": "/events/pubsub/orders", "event": event,
                                  "at": time.time()}) + "\\n")
        if event.get("data", {}).get("fail"):
            return {"status": "RETRY"}
        return {"status": "SUCCESS"}

    @dapr_app.subscribe(pubsub="pubsub", topic="orders-dead")
    def dead(event: dict) -> dict:
        with open(log, "a") as out:
            out.write(json.dumps({"path": "dead", "event": event, "at": time.time()}) + "\\n")
        return {"status": "SUCCESS"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    """
)

SDK_PUBLISH = textwrap.dedent(
    """
    import json, sys
    from dapr.clients import DaprClient

    with DaprClient() as client:
        for i in range(int(sys.argv[1])):
            client.publish_event(
                pubsub_name="pubsub", topic_name="orders",
                data=json.dumps({"n": i, "fail": sys.argv[2] == "fail"}),
                data_content_type="application/json",
            )
    print("published")
    """
)


class App:
    """A child process that writes one JSON line per event it receives to `log`."""

    def __init__(self, args: list[str], log: Path, port: int) -> None:
        self.log = log
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        with log.with_suffix(".err").open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err
            )

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def wait(
        self, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events()
            if check(found):
                return found
            assert self.proc.poll() is None, self.log.with_suffix(".err").read_text()
            time.sleep(0.1)
        raise AssertionError(f"{self.log.name}: not met in {timeout} s: {self.events()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def stack(tmp_path: Path, make_server: Callable[..., Server]) -> Iterator[dict[str, Any]]:
    dapr_port, plain_port, grpc_port = free_port(), free_port(), free_port()
    server = make_server(
        DUETIME_APP_ID="shop",
        DUETIME_APP_URL=f"http://127.0.0.1:{dapr_port}",
        DUETIME_APPS=json.dumps({"ledger": {"url": f"http://127.0.0.1:{plain_port}"}}),
        DUETIME_GRPC_PORT=str(grpc_port),
        DUETIME_PUBSUB_BACKOFF_BASE="0.1",
        DUETIME_PUBSUB_MAX_ATTEMPTS="3",
    ).start()
    (tmp_path / "dapr_app.py").write_text(DAPR_APP)
    plain_subs = [
        {"pubsubname": "pubsub", "topic": "orders", "route": "/ledger/orders"},
        {
            "pubsubname": "pubsub",
            "topic": "reminders",
            "routes": {
                "rules": [
                    {"match": 'event.type == "io.duetime.reminder.due"', "path": "/ledger/due"}
                ],
                "default": "/ledger/other",
            },
        },
    ]
    apps: list[App] = []
    try:
        yield {
            "server": server,
            "grpc_port": grpc_port,
            "start_apps": lambda: (
                apps.extend(
                    [
                        App(
                            [
                                str(tmp_path / "dapr_app.py"),
                                str(dapr_port),
                                str(tmp_path / "dapr.jsonl"),
                            ],
                            tmp_path / "dapr.jsonl",
                            dapr_port,
                        ),
                        App(
                            [
                                "-m",
                                "tests.subscriber",
                                str(plain_port),
                                json.dumps(plain_subs),
                                str(tmp_path / "plain.jsonl"),
                            ],
                            tmp_path / "plain.jsonl",
                            plain_port,
                        ),
                    ]
                )
                or apps
            ),
        }
    finally:
        for app in apps:
            app.stop()


def sdk_publish(stack: dict[str, Any], count: int, mode: str = "ok") -> None:
    server: Server = stack["server"]
    env = {
        **os.environ,
        "DAPR_HTTP_PORT": str(server.port),
        "DAPR_GRPC_PORT": str(stack["grpc_port"]),
        "DAPR_RUNTIME_HOST": "127.0.0.1",
        "DAPR_HEALTH_TIMEOUT": "20",
    }
    done = subprocess.run(
        [sys.executable, "-c", SDK_PUBLISH, str(count), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0 and "published" in done.stdout, done.stderr[-3000:]


def test_sdk_publish_reaches_a_daprapp_and_a_plain_subscriber(stack: dict[str, Any]) -> None:
    server: Server = stack["server"]
    sdk_publish(stack, 3)  # before any app runs: kept, then delivered once they subscribe
    dapr_app, plain = stack["start_apps"]()
    got = dapr_app.wait(lambda e: len(e) >= 3)
    ledger = plain.wait(lambda e: len([x for x in e if x["path"] == "/ledger/orders"]) >= 3)
    events = sorted((g["event"] for g in got), key=lambda e: e["data"]["n"])
    assert [e["data"] for e in events] == [{"n": i, "fail": False} for i in range(3)]
    for e in events:
        assert e["source"] == "shop" and e["type"] == "com.dapr.event.sent"
        assert e["topic"] == "orders" and e["pubsubname"] == "pubsub"
        assert e["datacontenttype"] == "application/json" and e["specversion"] == "1.0"
    assert sorted(json.loads(x["body"])["data"]["n"] for x in ledger) == [0, 1, 2]
    # over HTTP too, as the ledger app (named by its dapr-app-id)
    r = httpx.post(
        f"{server.url}/v1.0/publish/pubsub/orders",
        json={"n": 9, "fail": False},
        headers={"dapr-app-id": "ledger"},
        timeout=10,
    )
    assert r.status_code == 204, r.text
    got = dapr_app.wait(lambda e: any(g["event"]["data"]["n"] == 9 for g in e))
    assert next(g for g in got if g["event"]["data"]["n"] == 9)["event"]["source"] == "ledger"
    # RETRY from the DaprApp: 3 attempts, then its dead-letter topic
    sdk_publish(stack, 1, "fail")
    got = dapr_app.wait(lambda e: any(g["path"] == "dead" for g in e))
    attempts = [g for g in got if g["path"] != "dead" and g["event"]["data"].get("fail")]
    assert len(attempts) == 3
    dead = next(g for g in got if g["path"] == "dead")["event"]
    assert dead["id"] == attempts[0]["event"]["id"] and dead["topic"] == "orders"
    # daprd's metadata API lists the app's subscriptions and the pub/sub component
    meta = httpx.get(f"{server.url}/v1.0/metadata", timeout=10)
    assert meta.status_code == 200, meta.text
    body = meta.json()
    subs = {s["topic"]: s for s in body["subscriptions"]}
    assert set(subs) == {"orders", "orders-dead"}
    assert subs["orders"]["deadLetterTopic"] == "orders-dead"
    assert subs["orders"]["type"] == "PROGRAMMATIC"
    assert subs["orders"]["rules"] == [{"path": "/events/pubsub/orders"}]
    assert {"name": "pubsub", "type": "pubsub.duetime", "version": "v1"} in [
        {k: c[k] for k in ("name", "type", "version")} for c in body["components"]
    ]


def test_duetime_reminders_reach_a_subscriber_the_dapr_way(stack: dict[str, Any]) -> None:
    server: Server = stack["server"]
    _, plain = stack["start_apps"]()
    time.sleep(1.5)  # the app starts and is discovered
    token = issue_token(
        server_secret(server), "alice", ttl=timedelta(hours=1), now=datetime.now(UTC)
    )
    due = datetime.now(UTC) + timedelta(seconds=2)
    r = httpx.post(
        f"{server.url}/api/tasks",
        json={"title": "call", "due_at": iso(due), "reminders": [{"before": "PT0S"}]},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    got = plain.wait(lambda e: any(x["path"] == "/ledger/due" for x in e), timeout=30)
    due_event = json.loads(next(x for x in got if x["path"] == "/ledger/due")["body"])
    assert due_event["type"] == "io.duetime.reminder.due"
    assert due_event["topic"] == "reminders" and due_event["pubsubname"] == "pubsub"
    arrived = next(x for x in got if x["path"] == "/ledger/due")["at"]
    assert arrived >= due.timestamp() - 0.05  # never early


def server_secret(server: Server) -> str:
    data_dir = Path(server._env["DUETIME_DATA_DIR"])
    return (data_dir / "jwt-secret").read_text().strip()


GRPC_APP = textwrap.dedent(
    """
    import json, sys, time
    from cloudevents.sdk.event import v1
    from dapr.clients.grpc._response import TopicEventResponse
    from dapr.ext.grpc import App

    port, log = int(sys.argv[1]), sys.argv[2]
    app = App()

    def record(topic, event):
        data = event.Data()
        if isinstance(data, bytes):
            data = data.decode()
        with open(log, "a") as out:
            out.write(json.dumps({
                "path": topic, "id": event.EventID(), "source": event.Source(),
                "type": event.EventType(), "data": json.loads(data), "at": time.time(),
                "content_type": event.ContentType(),
            }) + "\\n")

    @app.subscribe(pubsub_name="pubsub", topic="orders")
    def orders(event: v1.Event) -> TopicEventResponse:
        record("orders", event)
        return TopicEventResponse("success")

    @app.subscribe(pubsub_name="pubsub", topic="grpc-flaky", dead_letter_topic="grpc-dead")
    def flaky(event: v1.Event) -> TopicEventResponse:
        record("grpc-flaky", event)
        return TopicEventResponse("retry")

    @app.subscribe(pubsub_name="pubsub", topic="grpc-dead")
    def dead(event: v1.Event) -> TopicEventResponse:
        record("grpc-dead", event)
        return TopicEventResponse("success")

    app.run(port, listen_address="127.0.0.1")
    """
)


def test_a_dapr_ext_grpc_app_receives_events_over_grpc(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    port = free_port()
    (tmp_path / "grpc_app.py").write_text(GRPC_APP)
    server = make_server(
        DUETIME_APP_ID="shop",
        DUETIME_APPS=json.dumps({"stock": {"url": f"127.0.0.1:{port}", "protocol": "grpc"}}),
        DUETIME_GRPC_PORT=str(free_port()),
        DUETIME_PUBSUB_BACKOFF_BASE="0.1",
        DUETIME_PUBSUB_MAX_ATTEMPTS="3",
    ).start()
    r = httpx.post(f"{server.url}/v1.0/publish/pubsub/orders", json={"n": 1}, timeout=10)
    assert r.status_code == 204, r.text
    app = App(
        [str(tmp_path / "grpc_app.py"), str(port), str(tmp_path / "grpc.jsonl")],
        tmp_path / "grpc.jsonl",
        port,
    )
    try:
        got = app.wait(lambda e: any(x["path"] == "orders" for x in e))
        order = next(x for x in got if x["path"] == "orders")
        assert order["data"] == {"n": 1} and order["source"] == "shop"
        assert order["type"] == "com.dapr.event.sent"
        assert order["content_type"] == "application/json"
        r = httpx.post(f"{server.url}/v1.0/publish/pubsub/grpc-flaky", json={"n": 2}, timeout=10)
        assert r.status_code == 204, r.text
        got = app.wait(lambda e: any(x["path"] == "grpc-dead" for x in e))
        assert len([x for x in got if x["path"] == "grpc-flaky"]) == 3
        assert next(x for x in got if x["path"] == "grpc-dead")["data"] == {"n": 2}
    finally:
        app.stop()
