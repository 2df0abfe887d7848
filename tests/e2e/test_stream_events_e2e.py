"""The live in-app stream (SSE) and the event log of a running duetime: resume with
Last-Event-ID, heartbeats, per-user isolation; events survive kill -9 before publishing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_delivery_e2e import SECRET, api, create_due, wait_until


class SseClient:
    """Reads `GET /api/notifications/stream` in a thread, as an EventSource would."""

    def __init__(self, server: Server, user: str, last_event_id: str | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self._stop = threading.Event()
        self._client = api(server, user)
        headers = {} if last_event_id is None else {"last-event-id": last_event_id}
        self._thread = threading.Thread(target=self._read, args=(headers,), daemon=True)
        self._thread.start()

    def _read(self, headers: dict[str, str]) -> None:
        try:
            with self._client.stream(
                "GET", "/api/notifications/stream", headers=headers, timeout=None
            ) as r:
                self.status = r.status_code
                event: dict[str, Any] = {}
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        self.comments.append(line)
                    elif line == "" and event:
                        self.events.append(event)
                        event = {}
                    elif ":" in line:
                        key, _, value = line.partition(":")
                        event[key] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass

    def notifications(self) -> list[dict[str, Any]]:
        return [json.loads(e["data"]) for e in self.events if e.get("event") == "notification"]

    def close(self) -> None:
        self._stop.set()
        self._client.close()
        self._thread.join(10)


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(DUETIME_JWT_SECRET=SECRET, DUETIME_SSE_HEARTBEAT="0.5").start()


@pytest.fixture
def streams() -> Iterator[list[SseClient]]:
    opened: list[SseClient] = []
    yield opened
    for s in opened:
        s.close()


def test_stream_delivers_live_resumes_with_last_event_id_and_isolates_users(
    server: Server, streams: list[SseClient]
) -> None:
    with api(server, "alice") as alice, api(server, "bob") as bob:
        live = SseClient(server, "alice")
        other = SseClient(server, "bob")
        streams += [live, other]
        wait_until(lambda: live.status == 200 and other.status == 200, what="streams open")

        first = create_due(alice, "First", seconds=1)
        wait_until(lambda: live.notifications(), what="the first notification")
        [note] = live.notifications()
        assert note["task_id"] == first["id"] and note["title"] == "First"
        first_id = live.events[-1]["id"]
        assert live.events[-1]["event"] == "notification"
        assert first_id.isdigit()
        live.close()

        # while alice is away: two more reminders reach her inbox
        missed = [create_due(alice, f"Missed {i}", seconds=1) for i in range(2)]
        wait_until(
            lambda: len(alice.get("/api/notifications").json()["notifications"]) == 3,
            what="missed notifications in the inbox",
        )
        create_due(bob, "Bob's", seconds=0.5)
        wait_until(lambda: other.notifications(), what="bob's notification")

        resumed = SseClient(server, "alice", last_event_id=first_id)
        streams.append(resumed)
        wait_until(lambda: len(resumed.notifications()) == 2, what="the missed ones replayed")
        assert {n["task_id"] for n in resumed.notifications()} == {t["id"] for t in missed}
        later = create_due(alice, "Live again", seconds=1)
        wait_until(lambda: len(resumed.notifications()) == 3, what="a live one after replay")
        assert resumed.notifications()[-1]["task_id"] == later["id"]
        ids = [int(e["id"]) for e in resumed.events if e.get("event") == "notification"]
        assert resumed.events[0] == {"retry": "2000"}
        assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] > int(first_id)

        wait_until(lambda: len(resumed.comments) >= 3, what="heartbeats")  # 0.5 s apart
        assert all(n["user_id"] == "bob" for n in other.notifications())
        assert len(other.notifications()) == 1


def test_stream_rejects_a_bad_last_event_id(server: Server) -> None:
    with api(server, "alice") as alice:
        r = alice.get("/api/notifications/stream", headers={"last-event-id": "abc"})
        assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
        r = alice.get("/api/notifications/stream", headers={"last-event-id": "9" * 30})
        assert r.status_code == 422
        # Issue 15, item 14: an id past any this log ever gave would hide every later one.
        r = alice.get("/api/notifications/stream", headers={"last-event-id": "123456"})
        assert r.status_code == 422 and "123456" in r.json()["detail"]
    assert httpx.get(f"{server.url}/api/notifications/stream").status_code == 401


def test_events_committed_before_kill_9_are_kept_in_the_log_in_order(
    make_server: Callable[..., Server],
) -> None:
    # The relay does not run: the task's events are committed, unpublished, as if the
    # process died between the commit and the publish. On SQLite their place in the log is
    # fixed at commit; that they are published after a restart is checked against the
    # relay itself in tests/integration/test_delivery.py.
    held = make_server(DUETIME_JWT_SECRET=SECRET, DUETIME_EVENT_RELAY="false").start()
    with api(held, "alice") as alice:
        task = alice.post("/api/tasks", json={"title": "Survives"}).json()
        r = alice.patch(f"/api/tasks/{task['id']}", json={"title": "Survives kill -9"})
        assert r.status_code == 200
        before = [e["event"]["type"] for e in alice.get("/api/events").json()["events"]]
        assert before == ["io.duetime.task.created", "io.duetime.task.updated"]
    held.kill()

    restarted = make_server(DUETIME_JWT_SECRET=SECRET).start()
    with api(restarted, "alice") as alice:
        log = wait_until(lambda: alice.get("/api/events").json()["events"], what="events published")
        types = [e["event"]["type"] for e in log]
        assert types == ["io.duetime.task.created", "io.duetime.task.updated"]
        assert [e["topic"] for e in log] == ["task-events", "task-events"]
        created = log[0]["event"]
        assert set(created) == {
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "datacontenttype",
            "subject",
            "data",
        }
        assert (
            created["subject"] == f"tasks/{task['id']}" and created["data"]["title"] == "Survives"
        )
        cursor = alice.get("/api/events").json()["cursor"]
        assert cursor == log[-1]["seq"]
        alice.delete(f"/api/tasks/{task['id']}")
        newer = wait_until(
            lambda: alice.get("/api/events", params={"after": cursor}).json()["events"],
            what="the delete event",
        )
        assert [e["event"]["type"] for e in newer] == ["io.duetime.task.deleted"]
        assert alice.get("/api/events", params={"topic": "reminders"}).json()["events"] == []
        assert alice.get("/api/events", params={"topic": "nope"}).status_code == 422
        assert alice.get("/api/events", params={"after": -1}).status_code == 422


def test_completing_a_task_emits_task_completed(server: Server) -> None:
    with api(server, "alice") as alice:
        task = alice.post("/api/tasks", json={"title": "Finish"}).json()
        alice.post(f"/api/tasks/{task['id']}/complete").raise_for_status()
        log = wait_until(
            lambda: (e := alice.get("/api/events").json()["events"]) and len(e) == 2 and e,
            what="two events",
        )
        assert [e["event"]["type"] for e in log] == [
            "io.duetime.task.created",
            "io.duetime.task.completed",
        ]
        assert log[1]["event"]["data"]["status"] == "done"
        assert datetime.fromisoformat(log[1]["event"]["time"]) <= datetime.now(UTC) + timedelta(
            seconds=1
        )


def test_open_streams_do_not_hold_up_shutdown(server: Server, streams: list[SseClient]) -> None:
    live = SseClient(server, "alice")
    streams.append(live)
    wait_until(lambda: live.status == 200, what="stream open")
    assert server.proc is not None
    began = time.monotonic()
    server.proc.terminate()
    server.proc.wait(15)  # uvicorn re-raises SIGTERM once it has shut down cleanly
    assert time.monotonic() - began < 8  # the stream was ended, not waited for
    log = server._log.read_text()
    assert "Application shutdown complete" in log and "ERROR" not in log
