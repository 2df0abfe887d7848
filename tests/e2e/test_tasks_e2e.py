"""The task API over HTTP against a running duetime: reminders at the exact time, once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from duetime.auth import issue_token
from tests.e2e.conftest import Server

SECRET = "test-secret-for-e2e-0123456789abcdef"


def token(user: str) -> str:
    return issue_token(SECRET, user, ttl=timedelta(hours=1), now=datetime.now(UTC))


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class User:
    def __init__(self, server: Server, name: str) -> None:
        self.http = httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {token(name)}"}, timeout=30
        )

    def create(self, **task: object) -> dict:
        r = self.http.post("/api/tasks", json=task)
        assert r.status_code == 201, r.text
        return r.json()

    def inbox(self) -> list[dict]:
        r = self.http.get("/api/notifications", params={"limit": 500})
        assert r.status_code == 200, r.text
        return r.json()["notifications"]

    def wait_inbox(self, count: int, timeout: float = 15) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(found := self.inbox()) < count:
            assert time.monotonic() < deadline, f"inbox has {len(found)}, expected {count}"
            time.sleep(0.1)
        return found


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(DUETIME_JWT_SECRET=SECRET).start()


@pytest.fixture
def alice(server: Server) -> Iterator[User]:
    user = User(server, "alice")
    yield user
    user.http.close()


def test_task_due_in_two_seconds_is_delivered_once_not_early(alice: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2)
    task = alice.create(title="Pay rent", due_at=iso(due))
    [reminder] = task["reminders"]
    assert reminder["state"] == "scheduled" and parse(reminder["fire_at"]) == due
    [note] = alice.wait_inbox(1)
    assert note["task_id"] == task["id"] and note["title"] == "Pay rent"
    assert parse(note["fired_at"]) >= due and parse(note["scheduled_for"]) == due
    assert 0 <= note["lateness_ms"] < 5000 and note["read"] is False
    time.sleep(1)
    assert len(alice.inbox()) == 1
    fired = alice.http.get(f"/api/tasks/{task['id']}").json()["reminders"][0]
    assert fired["state"] == "delivered" and fired["lateness_ms"] == note["lateness_ms"]
    read = alice.http.post(f"/api/notifications/{note['id']}/read")
    assert read.json()["read"] is True
    assert (
        alice.http.get("/api/notifications", params={"unread": "true"}).json()["notifications"]
        == []
    )


def test_moved_due_time_delivers_at_the_new_time_only(alice: User) -> None:
    first = datetime.now(UTC) + timedelta(seconds=1.5)
    task = alice.create(title="Call", due_at=iso(first))
    moved = first + timedelta(seconds=2)
    r = alice.http.patch(f"/api/tasks/{task['id']}", json={"due_at": iso(moved)})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.json()["reminders"][0]["id"] == task["reminders"][0]["id"]
    [note] = alice.wait_inbox(1, timeout=10)
    assert parse(note["fired_at"]) >= moved
    assert parse(note["scheduled_for"]) == moved
    time.sleep(0.5)
    assert len(alice.inbox()) == 1


def test_other_edits_reschedule_nothing(alice: User) -> None:
    due = datetime.now(UTC) + timedelta(hours=1)
    task = alice.create(title="Read", due_at=iso(due), tags=["home"])
    r = alice.http.patch(f"/api/tasks/{task['id']}", json={"title": "Read a book"})
    assert r.json()["reminders"] == task["reminders"]


def test_delete_and_complete_cancel(alice: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    deleted = alice.create(title="Deleted", due_at=iso(due))
    done = alice.create(title="Done", due_at=iso(due))
    kept = alice.create(title="Kept", due_at=iso(due + timedelta(seconds=0.5)))
    assert alice.http.delete(f"/api/tasks/{deleted['id']}").status_code == 204
    completed = alice.http.post(f"/api/tasks/{done['id']}/complete").json()
    assert completed["status"] == "done" and completed["reminders"][0]["state"] == "skipped"
    [note] = alice.wait_inbox(1)
    time.sleep(1.5)
    assert [n["task_id"] for n in alice.inbox()] == [kept["id"]] == [note["task_id"]]
    assert alice.http.get(f"/api/tasks/{deleted['id']}").status_code == 404


def test_reopen_schedules_future_reminders_again(alice: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2)
    task = alice.create(title="Again", due_at=iso(due))
    alice.http.post(f"/api/tasks/{task['id']}/complete")
    reopened = alice.http.post(f"/api/tasks/{task['id']}/reopen").json()
    assert reopened["status"] == "open" and reopened["reminders"][0]["state"] == "scheduled"
    [note] = alice.wait_inbox(1)
    assert parse(note["fired_at"]) >= due


def test_before_pt1s_fires_a_second_early_and_several_reminders(alice: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2.5)
    task = alice.create(
        title="Meeting",
        due_at=iso(due),
        reminders=[{"before": "PT1S"}, {"before": "PT0S"}],
    )
    early, on_time = task["reminders"]
    assert parse(early["fire_at"]) == due - timedelta(seconds=1)
    notes = alice.wait_inbox(2)
    by_reminder = {n["reminder_id"]: n for n in notes}
    assert parse(by_reminder[early["id"]]["fired_at"]) >= due - timedelta(seconds=1)
    assert parse(by_reminder[on_time["id"]]["fired_at"]) >= due
    assert parse(by_reminder[early["id"]]["fired_at"]) < parse(
        by_reminder[on_time["id"]]["fired_at"]
    )


def test_past_reminders_are_not_scheduled_and_empty_list_means_none(alice: User) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    task = alice.create(title="Late", due_at=iso(past))
    assert task["reminders"][0]["state"] == "skipped"
    none = alice.create(title="Quiet", due_at=iso(past + timedelta(hours=1)), reminders=[])
    assert none["reminders"] == []
    undated = alice.create(title="Someday")
    assert undated["reminders"] == [] and undated["due_at"] is None


def test_naive_due_time_with_a_time_zone(alice: User) -> None:
    task = alice.create(
        title="Spring forward", due_at="2030-03-10T02:30:00", timezone="America/New_York"
    )
    assert task["due_at"] == "2030-03-10T07:30:00Z"  # the gap: 02:30 → 03:30 EDT
    assert task["timezone"] == "America/New_York"


def test_another_user_cannot_see_or_change_the_task(server: Server, alice: User) -> None:
    task = alice.create(title="Private", due_at=iso(datetime.now(UTC) + timedelta(hours=1)))
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {token('mallory')}"}
    ) as mallory:
        path = f"/api/tasks/{task['id']}"
        assert mallory.get(path).status_code == 404
        assert mallory.patch(path, json={"title": "mine"}).status_code == 404
        assert mallory.put(path, json={"title": "mine"}).status_code == 404
        assert mallory.delete(path).status_code == 404
        assert mallory.post(f"{path}/complete").status_code == 404
        assert mallory.get("/api/tasks").json()["tasks"] == []
    assert alice.http.get(f"/api/tasks/{task['id']}").json()["title"] == "Private"


def test_list_filters_sorts_and_pages(alice: User) -> None:
    base = datetime.now(UTC) + timedelta(days=1)
    for i in range(7):
        alice.create(
            title=f"Task {i}" + (" groceries" if i % 2 else ""),
            due_at=iso(base + timedelta(hours=7 - i)),
            tags=["odd"] if i % 2 else ["even"],
            reminders=[],
        )
    alice.create(title="No date", reminders=[])
    page = alice.http.get("/api/tasks", params={"sort": "due_at", "limit": 3}).json()
    titles = [t["title"] for t in page["tasks"]]
    assert titles[0].startswith("Task 6")
    seen = list(titles)
    while page["next_cursor"]:
        page = alice.http.get(
            "/api/tasks", params={"sort": "due_at", "limit": 3, "cursor": page["next_cursor"]}
        ).json()
        seen += [t["title"] for t in page["tasks"]]
    assert len(seen) == 8 and seen[-1] == "No date"
    odd = alice.http.get("/api/tasks", params={"tag": "odd"}).json()["tasks"]
    assert len(odd) == 3
    found = alice.http.get("/api/tasks", params={"q": "GROCERIES"}).json()["tasks"]
    assert len(found) == 3
    due_soon = alice.http.get(
        "/api/tasks", params={"due_before": iso(base + timedelta(hours=3))}
    ).json()["tasks"]
    assert len(due_soon) == 2


def test_batch_creates_all_and_schedules_their_reminders(alice: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2)
    body = {"tasks": [{"title": f"Imported {i}", "due_at": iso(due)} for i in range(50)]}
    r = alice.http.post("/api/tasks/batch", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["scheduled_reminders"] == 50 and len(r.json()["tasks"]) == 50
    notes = alice.wait_inbox(50)
    assert len({n["task_id"] for n in notes}) == 50


def test_a_trigger_delivered_twice_gives_one_notification(server: Server, alice: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1)
    task = alice.create(title="Once", due_at=iso(due))
    [note] = alice.wait_inbox(1)
    reminder = task["reminders"][0]
    data = {"task_id": task["id"], "reminder_id": reminder["id"], "fire_at": reminder["fire_at"]}
    for _ in range(2):  # what a Dapr sidecar does when it redelivers
        r = httpx.post(f"{server.url}/job/reminder-{reminder['id']}", json=data)
        assert r.status_code == 200
    assert [n["id"] for n in alice.inbox()] == [note["id"]]


def test_kill_9_with_reminders_pending_delivers_each_once(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(DUETIME_JWT_SECRET=SECRET).start()
    alice = User(server, "alice")
    due = datetime.now(UTC) + timedelta(seconds=2)
    body = {"tasks": [{"title": f"T{i}", "due_at": iso(due)} for i in range(30)]}
    assert alice.http.post("/api/tasks/batch", json=body).status_code == 201
    later = alice.create(title="After restart", due_at=iso(due + timedelta(seconds=5)))
    alice.http.close()
    server.kill()
    time.sleep(3)  # the first 30 come due while duetime is down
    server = make_server(DUETIME_JWT_SECRET=SECRET).start()
    alice = User(server, "alice")
    notes = alice.wait_inbox(31, timeout=20)
    time.sleep(1)
    notes = alice.inbox()
    assert len(notes) == 31 and len({n["reminder_id"] for n in notes}) == 31
    assert all(parse(n["fired_at"]) >= parse(n["scheduled_for"]) for n in notes)
    final = alice.http.get(f"/api/tasks/{later['id']}").json()
    alice.http.close()
    assert final["reminders"][0]["state"] == "delivered"


def test_adding_a_due_time_later_brings_the_default_reminder(alice: User) -> None:
    task = alice.create(title="Someday")
    due = iso(datetime.now(UTC) + timedelta(hours=1))
    patched = alice.http.patch(f"/api/tasks/{task['id']}", json={"due_at": due}).json()
    assert [parse(r["fire_at"]) for r in patched["reminders"]] == [parse(due)]
    put = alice.http.put(
        f"/api/tasks/{task['id']}", json={"title": "Someday", "due_at": due, "reminders": []}
    ).json()
    assert put["reminders"] == []
    again = alice.http.put(f"/api/tasks/{task['id']}", json={"title": "x", "due_at": due})
    assert len(again.json()["reminders"]) == 1  # PUT without reminders: the default


def test_an_early_trigger_is_refused_and_delivers_nothing(server: Server, alice: User) -> None:
    task = alice.create(title="Later", due_at=iso(datetime.now(UTC) + timedelta(days=365)))
    reminder = task["reminders"][0]
    data = {"task_id": task["id"], "reminder_id": reminder["id"], "fire_at": reminder["fire_at"]}
    r = httpx.post(f"{server.url}/job/reminder-{reminder['id']}", json=data)
    assert r.status_code == 500  # a failure for the engine's retry policy, not a delivery
    assert alice.inbox() == []


def test_edits_racing_with_delivery_keep_the_delivered_state(alice: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    tasks = [alice.create(title=f"race {i}", due_at=iso(due)) for i in range(20)]
    deadline = due + timedelta(seconds=1)
    n = 0
    while datetime.now(UTC) < deadline:
        t = tasks[n % len(tasks)]
        r = alice.http.patch(f"/api/tasks/{t['id']}", json={"description": f"edit {n}"})
        assert r.status_code == 200, r.text
        n += 1
    alice.wait_inbox(20)
    for t in tasks:
        final = alice.http.get(f"/api/tasks/{t['id']}").json()
        assert final["reminders"][0]["state"] == "delivered", final
