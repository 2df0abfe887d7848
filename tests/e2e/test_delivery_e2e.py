"""Reminders delivered by webhook and email from a running duetime, to real receivers: a real
HTTP server and a real SMTP server (aiosmtpd). Retries, dead letters, replay, duplicates."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from duetime.auth import issue_token
from tests.conftest import free_port
from tests.e2e.conftest import Receiver, Server
from tests.smtp import SmtpServer

SECRET = "test-secret-for-e2e-0123456789abcdef"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def api(server: Server, user: str) -> httpx.Client:
    token = issue_token(SECRET, user, ttl=timedelta(hours=1), now=datetime.now(UTC))
    return httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} not met in {timeout}s"
        time.sleep(0.1)
    return found


def recipe() -> Callable[..., bool]:
    """The verification snippet of docs/howto/webhooks.md, run as written."""
    text = (DOCS / "howto" / "webhooks.md").read_text()
    [code] = re.findall(r"```python\n(.*?)```", text, re.S)
    scope: dict[str, Any] = {}
    exec(compile(code, "webhooks.md", "exec"), scope)
    verify: Callable[..., bool] = scope["verify_webhook"]
    return verify


def create_due(client: httpx.Client, title: str, seconds: float = 1.5) -> dict[str, Any]:
    due = datetime.now(UTC) + timedelta(seconds=seconds)
    r = client.post("/api/tasks", json={"title": title, "due_at": iso(due)})
    assert r.status_code == 201, r.text
    task: dict[str, Any] = r.json()
    return task


def deliveries(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/deliveries", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["deliveries"]
    return found


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def test_webhook_and_email_reach_real_receivers_signed_and_recorded(
    make_server: Callable[..., Server], receiver: Receiver, smtp: SmtpServer
) -> None:
    server = make_server(
        DUETIME_JWT_SECRET=SECRET, DUETIME_WEBHOOK_ALLOW_PRIVATE="true", **smtp.env()
    ).start()
    with api(server, "alice") as alice:
        r = alice.put(
            "/api/me/channels",
            json={
                "webhook": {"url": f"{receiver.url}/hooks/alice", "enabled": True},
                "email": {"address": "alice@example.com", "enabled": True},
            },
        )
        assert r.status_code == 200, r.text
        channels = r.json()
        secret = channels["webhook"]["secret"]
        assert secret.startswith("whsec_") and channels["in_app"]["enabled"] is True
        assert alice.get("/api/me/channels").json() == channels

        task = create_due(alice, "Pay rent")
        receiver.wait_for(lambda: len(receiver.of("/hooks/alice")) == 1)
        smtp.wait_for(lambda: len(smtp.messages) == 1)

        [hook] = receiver.of("/hooks/alice")
        assert recipe()(secret, hook.headers, hook.body)
        assert not recipe()("whsec_wrong", hook.headers, hook.body)
        assert not recipe()(secret, hook.headers, hook.body + b" ")
        event = hook.data
        assert event["specversion"] == "1.0" and event["type"] == "io.duetime.reminder.due"
        assert event["data"]["task_id"] == task["id"] and event["data"]["title"] == "Pay rent"
        assert hook.headers["duetime-event-id"] == event["id"]

        [(rcpt, mail)] = smtp.messages
        assert rcpt == ["alice@example.com"] and "Pay rent" in mail["Subject"]

        def delivered() -> list[dict[str, Any]] | None:
            found = [d for d in deliveries(alice) if d["state"] == "delivered"]
            return found if len(found) == 2 else None

        done = wait_until(delivered, what="two delivered deliveries")
        by_channel = {d["channel"]: d for d in done}
        assert hook.headers["idempotency-key"] == by_channel["webhook"]["id"]
        assert mail["Message-ID"] == f"<{by_channel['email']['id']}@duetime.test>"
        for d in done:
            assert d["event_id"] == event["id"] and d["attempts"] == 1
            [attempt] = d["history"]
            assert attempt["status"] == "delivered" and attempt["attempt"] == 1
        assert by_channel["webhook"]["history"][0]["http_status"] == 200

        def types() -> list[str]:
            log = alice.get("/api/events", params={"limit": 1000}).json()["events"]
            return [e["event"]["type"].removeprefix("io.duetime.") for e in log]

        wait_until(lambda: types().count("reminder.delivered") == 2, what="delivered events")
        assert types()[:2] == ["task.created", "reminder.due"]
        with api(server, "bob") as bob:
            assert deliveries(bob) == []
            assert bob.get("/api/events").json()["events"] == []


def test_receiver_down_retries_then_dead_letter_then_replay_delivers_once(
    make_server: Callable[..., Server],
) -> None:
    port = free_port()  # nothing listens here yet: connections are refused
    server = make_server(
        DUETIME_JWT_SECRET=SECRET,
        DUETIME_WEBHOOK_ALLOW_PRIVATE="true",
        DUETIME_DELIVERY_MAX_ATTEMPTS="3",
        DUETIME_DELIVERY_BACKOFF_BASE="0.2",
    ).start()
    with api(server, "alice") as alice:
        url = f"http://127.0.0.1:{port}/hook"
        r = alice.put("/api/me/channels", json={"webhook": {"url": url, "enabled": True}})
        assert r.status_code == 200, r.text
        create_due(alice, "Down", seconds=1)
        [dead] = wait_until(
            lambda: alice.get("/api/dead-letters").json()["deliveries"], what="a dead letter"
        )
        assert dead["state"] == "dead" and dead["attempts"] == 3
        assert [a["attempt"] for a in dead["history"]] == [1, 2, 3]
        assert all(a["status"] == "failed" and a["error"] for a in dead["history"])
        assert "cannot reach" in dead["last_error"]
        times = [datetime.fromisoformat(a["started_at"]) for a in dead["history"]]
        assert times == sorted(times)

        up = Receiver(port=port)
        try:
            first = alice.post(f"/api/dead-letters/{dead['id']}/replay")
            second = alice.post(f"/api/dead-letters/{dead['id']}/replay")
            assert first.status_code == 202, first.text
            assert second.status_code == 409, second.text  # one replay at a time
            up.wait_for(lambda: len(up.of("/hook")) >= 1)
            replayed = wait_until(
                lambda: [d for d in deliveries(alice) if d["state"] == "delivered"],
                what="the replay delivered",
            )[0]
            time.sleep(1.0)
            assert len(up.of("/hook")) == 1  # delivered exactly once
            assert up.of("/hook")[0].headers["idempotency-key"] == dead["id"]
            assert replayed["replays"] == 1 and replayed["attempts"] == 4
            assert replayed["history"][-1]["status"] == "delivered"
            assert alice.get("/api/dead-letters").json()["deliveries"] == []
            again = alice.post(f"/api/dead-letters/{dead['id']}/replay")
            assert again.status_code == 409
            assert alice.post("/api/dead-letters/nope/replay").status_code == 404
            with api(server, "bob") as bob:
                assert bob.post(f"/api/dead-letters/{dead['id']}/replay").status_code == 404
        finally:
            up.close()


def test_duplicate_triggers_send_one_webhook_and_one_email(
    make_server: Callable[..., Server], receiver: Receiver, smtp: SmtpServer
) -> None:
    server = make_server(
        DUETIME_JWT_SECRET=SECRET, DUETIME_WEBHOOK_ALLOW_PRIVATE="true", **smtp.env()
    ).start()
    with api(server, "alice") as alice, server.client() as engine:
        alice.put(
            "/api/me/channels",
            json={
                "webhook": {"url": f"{receiver.url}/dup", "enabled": True},
                "email": {"address": "alice@example.com", "enabled": True},
            },
        ).raise_for_status()
        task = create_due(alice, "Once", seconds=1)
        [reminder] = task["reminders"]
        body = {
            "task_id": task["id"],
            "reminder_id": reminder["id"],
            "fire_at": reminder["fire_at"],
        }
        receiver.wait_for(lambda: len(receiver.of("/dup")) == 1)

        def trigger() -> None:
            r = engine.post(f"/job/reminder-{reminder['id']}", json=body)
            assert r.status_code == 200, r.text

        threads = [threading.Thread(target=trigger) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        trigger()
        time.sleep(2.0)
        assert len(receiver.of("/dup")) == 1
        assert len(smtp.messages) == 1
        assert len(deliveries(alice)) == 2
        assert len(alice.get("/api/notifications").json()["notifications"]) == 1
