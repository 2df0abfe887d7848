"""Web Push from a running duetime to a push service stand-in on 127.0.0.1 that checks the
VAPID JWT and decrypts each push with the device's private key: devices registered over the
API, a reminder pushed at (never before) its due time, the delivery and its attempts in the
delivery API, an expired subscription removed; bad input refused naming the field."""

from __future__ import annotations

import base64
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from duetime.auth import issue_token
from tests.e2e.conftest import Server
from tests.push_service import PushServiceStandIn

SECRET = "test-secret-for-e2e-0123456789abcdef"
SUBJECT = "mailto:ops@duetime.test"


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


@pytest.fixture
def push_service() -> Iterator[PushServiceStandIn]:
    s = PushServiceStandIn(subject=SUBJECT)
    yield s
    s.close()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(
        DUETIME_JWT_SECRET=SECRET,
        DUETIME_WEBHOOK_ALLOW_PRIVATE="true",
        DUETIME_VAPID_SUBJECT=SUBJECT,
        DUETIME_PUSH_TTL="120",
        DUETIME_DELIVERY_BACKOFF_BASE="0.2",
    ).start()


def test_a_reminder_reaches_each_device_encrypted_at_its_due_time_and_is_recorded(
    server: Server, push_service: PushServiceStandIn, tmp_path: Path
) -> None:
    with api(server, "alice") as alice, api(server, "bob") as bob:
        key = alice.get("/api/push/key")
        assert key.status_code == 200, key.text
        public_key = key.json()["public_key"]
        raw = base64.urlsafe_b64decode(public_key + "=" * (-len(public_key) % 4))
        assert len(raw) == 65 and raw[0] == 4
        key_file = tmp_path / "data" / "vapid-private-key.pem"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        laptop = push_service.device("laptop", application_server_key=public_key)
        expired = push_service.device("expired", application_server_key=public_key)
        push_service.answer["expired"] = 410
        r = alice.post(
            "/api/push/subscriptions",
            json=laptop.to_json(),
            headers={"user-agent": "Firefox/140 on Linux"},
        )
        assert r.status_code == 201, r.text
        sub = r.json()
        assert sub["endpoint"] == laptop.endpoint and sub["label"] == "Firefox/140 on Linux"
        again = alice.post("/api/push/subscriptions", json={**laptop.to_json(), "label": "Mine"})
        assert again.status_code == 200 and again.json()["id"] == sub["id"]  # idempotent
        r = alice.post("/api/push/subscriptions", json=expired.to_json())
        assert r.status_code == 201, r.text
        listed = alice.get("/api/push/subscriptions").json()["subscriptions"]
        assert [s["endpoint"] for s in listed] == [laptop.endpoint, expired.endpoint]
        assert listed[0]["label"] == "Mine" and listed[1]["label"].startswith("python-httpx/")
        assert bob.get("/api/push/subscriptions").json() == {"subscriptions": []}
        assert bob.delete(f"/api/push/subscriptions/{sub['id']}").status_code == 404

        r = alice.put("/api/me/channels", json={"push": {"enabled": True}})
        assert r.status_code == 200, r.text
        assert r.json()["push"]["enabled"] is True

        due = datetime.now(UTC) + timedelta(seconds=3)
        r = alice.post(
            "/api/tasks",
            json={"title": "Pay rent", "due_at": due.isoformat().replace("+00:00", "Z")},
        )
        assert r.status_code == 201, r.text
        task = r.json()
        push_service.wait_for(lambda: len(push_service.of("laptop")) == 1, timeout=20)
        [push] = push_service.of("laptop")
        assert push.problems == [] and push.status == 201
        assert push.at >= due.timestamp(), "pushed before the reminder was due"
        assert push.at - due.timestamp() < 3.0
        data = push.data
        assert data["title"] == "Pay rent" and data["task_id"] == task["id"]
        scheduled = datetime.fromisoformat(data["scheduled_for"].replace("Z", "+00:00"))
        assert abs((scheduled - due).total_seconds()) < 1.0
        assert [a["action"] for a in data["actions"]] == ["snooze", "done"]
        assert push.headers["authorization"].endswith(f"k={public_key}")
        assert push.claims is not None and push.claims["sub"] == SUBJECT
        assert push.headers["ttl"] == "120" and push.headers["urgency"] == "high"

        def settled() -> list[dict[str, Any]] | None:
            found = alice.get("/api/deliveries").json()["deliveries"]
            done = len(found) == 2 and all(d["state"] != "pending" for d in found)
            return found if done else None

        found = {d["target"]: d for d in wait_until(settled, what="both push deliveries")}
        ok = found[laptop.endpoint]
        assert ok["channel"] == "push" and ok["state"] == "delivered"
        assert ok["device"] == sub["id"] and ok["notification_id"] == data["notification_id"]
        assert [(a["status"], a["http_status"]) for a in ok["history"]] == [("delivered", 201)]
        gone = found[expired.endpoint]
        assert gone["state"] == "dead" and gone["attempts"] == 1
        assert [(a["status"], a["http_status"]) for a in gone["history"]] == [("failed", 410)]
        assert "HTTP 410" in gone["last_error"]
        [left] = alice.get("/api/push/subscriptions").json()["subscriptions"]
        assert left["id"] == sub["id"] and left["last_success_at"] is not None
        assert len(push_service.of("expired")) == 1  # not retried
        assert bob.get("/api/deliveries").json()["deliveries"] == []

        r = alice.delete(f"/api/push/subscriptions/{sub['id']}")
        assert r.status_code == 204
        assert alice.get("/api/push/subscriptions").json() == {"subscriptions": []}
        assert alice.delete(f"/api/push/subscriptions/{sub['id']}").status_code == 404

    # the same key after a restart: browsers' subscriptions stay valid
    server.stop()
    server.start()
    with api(server, "alice") as alice:
        assert alice.get("/api/push/key").json()["public_key"] == public_key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_bad_subscriptions_are_422_naming_the_field_never_500(
    server: Server, push_service: PushServiceStandIn
) -> None:
    good = push_service.device("good").to_json()
    keys = good["keys"]
    cases: list[tuple[Any, str]] = [
        ({**good, "endpoint": "ftp://127.0.0.1/x"}, "endpoint"),
        ({**good, "endpoint": "http://10.0.0.1/x"}, "endpoint"),
        ({**good, "endpoint": "not a url"}, "endpoint"),
        ({**good, "endpoint": ""}, "endpoint"),
        ({**good, "endpoint": 42}, "endpoint"),
        ({**good, "keys": {**keys, "p256dh": _b64(os.urandom(64))}}, "keys.p256dh"),
        ({**good, "keys": {**keys, "p256dh": "%%%"}}, "keys.p256dh"),
        ({**good, "keys": {**keys, "auth": _b64(os.urandom(8))}}, "keys.auth"),
        ({**good, "keys": {"p256dh": keys["p256dh"]}}, "auth"),
        ({"endpoint": good["endpoint"]}, "keys"),
        ({**good, "keys": "nope"}, "keys"),
        ([1, 2], "body"),
        ({**good, "label": "x" * 500}, "label"),
    ]
    with api(server, "alice") as alice:
        for body, field in cases:
            r = alice.post("/api/push/subscriptions", json=body)
            assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
            assert field in r.text, (body, r.text)
        r = alice.post(
            "/api/push/subscriptions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert 400 <= r.status_code < 500, r.text
        assert alice.get("/api/push/subscriptions").json() == {"subscriptions": []}
        assert alice.delete("/api/push/subscriptions/%00").status_code in (400, 404)
        r = alice.put("/api/me/channels", json={"push": {"enabled": "maybe"}})
        assert r.status_code in (400, 422) and "push" in r.text
    anonymous = httpx.get(f"{server.url}/api/push/key")
    assert anonymous.status_code == 401
