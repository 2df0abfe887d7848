"""Recurring tasks, the user's time settings, snooze, quiet hours and missed reminders over
HTTP against a running duetime."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_tasks_e2e import SECRET, User, iso, parse


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(DUETIME_JWT_SECRET=SECRET).start()


@pytest.fixture
def bob(server: Server) -> Iterator[User]:
    user = User(server, "bob")
    yield user
    user.http.close()


def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_complete_a_recurring_task_and_the_next_occurrence_reminds(bob: User) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    # The second reminder is a day minus 10 s early: in the past for this occurrence
    # (skipped), 10 s after this due time for the next one.
    reminders = [{"before": "PT0S"}, {"before": "PT23H59M50S"}]
    first = bob.create(title="Stretch", due_at=iso(due), recurrence="daily", reminders=reminders)
    assert first["series_id"] and first["occurrence"] == 1
    assert [r["state"] for r in first["reminders"]] == ["scheduled", "skipped"]
    [note] = bob.wait_inbox(1)
    assert parse(note["fired_at"]) >= due

    done = bob.http.post(f"/api/tasks/{first['id']}/complete")
    assert done.status_code == 200 and done.json()["status"] == "done"
    series = bob.http.get(f"/api/series/{first['series_id']}").json()
    assert series["recurrence"] == "FREQ=DAILY" and series["active"] is True
    old, nxt = series["occurrences"]
    assert old["status"] == "done" and nxt["status"] == "open" and nxt["occurrence"] == 2
    assert parse(nxt["due_at"]) == due + timedelta(days=1)
    early = nxt["reminders"][1]
    assert early["state"] == "scheduled" and parse(early["fire_at"]) == due + timedelta(seconds=10)

    notes = bob.wait_inbox(2, timeout=30)
    second = next(n for n in notes if n["task_id"] == nxt["id"])
    assert parse(second["fired_at"]) >= due + timedelta(seconds=10)
    time.sleep(1)
    assert len(bob.inbox()) == 2  # delivered once

    preview = bob.http.get(f"/api/tasks/{nxt['id']}/occurrences", params={"count": 3})
    assert [parse(d) for d in preview.json()["due_at"]] == [
        due + timedelta(days=d) for d in (2, 3, 4)
    ]
    listed = bob.http.get("/api/tasks", params={"series_id": first["series_id"]}).json()
    assert {t["id"] for t in listed["tasks"]} == {first["id"], nxt["id"]}


def test_skip_and_stop_a_series(bob: User) -> None:
    due = datetime.now(UTC) + timedelta(days=1)
    task = bob.create(title="Review", due_at=iso(due), recurrence="FREQ=WEEKLY;COUNT=5")
    skipped = bob.http.post(f"/api/tasks/{task['id']}/skip").json()
    assert skipped["status"] == "skipped"
    assert (
        bob.http.get("/api/tasks", params={"status": "skipped"}).json()["tasks"][0]["id"]
        == (task["id"])
    )
    stopped = bob.http.post(f"/api/series/{task['series_id']}/stop").json()
    assert stopped["active"] is False and len(stopped["occurrences"]) == 2
    current = stopped["occurrences"][1]
    bob.http.post(f"/api/tasks/{current['id']}/complete")
    after = bob.http.get(f"/api/series/{task['series_id']}").json()
    assert len(after["occurrences"]) == 2  # stopped: nothing new


def test_edit_the_series_or_one_occurrence(bob: User) -> None:
    task = bob.create(
        title="Gym",
        due_at="2027-01-04T18:00:00",
        timezone="Europe/London",
        recurrence="FREQ=WEEKLY;BYDAY=MO,WE",
    )
    refused = bob.http.patch(f"/api/tasks/{task['id']}", json={"recurrence": "daily"})
    assert refused.status_code == 422 and "scope=series" in refused.json()["detail"]
    changed = bob.http.patch(
        f"/api/tasks/{task['id']}?scope=series", json={"title": "Swim", "recurrence": "weekdays"}
    )
    assert changed.status_code == 200, changed.text
    assert bob.http.get(f"/api/series/{task['series_id']}").json()["recurrence"] == (
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    )
    bob.http.post(f"/api/tasks/{task['id']}/complete")
    nxt = bob.http.get(f"/api/series/{task['series_id']}").json()["occurrences"][1]
    assert nxt["title"] == "Swim" and nxt["local_due_at"] == "2027-01-05T18:00:00"


def test_local_time_follows_the_user_and_quiet_hours_hold(bob: User) -> None:
    assert bob.http.get("/api/me").json() == {"timezone": None, "quiet_hours": None}
    naive = bob.http.post("/api/tasks", json={"title": "x", "due_at": "2027-05-01T09:00:00"})
    assert naive.status_code == 422 and "PUT /api/me" in naive.json()["detail"]

    assert bob.http.put("/api/me", json={"timezone": "Europe/Berlin"}).status_code == 200
    local = bob.create(title="Standup", due_at="2027-05-01T09:00:00")
    assert local["follows_user_timezone"] is True
    assert parse(local["due_at"]) == datetime(2027, 5, 1, 7, tzinfo=UTC)
    bob.http.put("/api/me", json={"timezone": "America/Chicago"})
    moved = bob.http.get(f"/api/tasks/{local['id']}").json()
    assert parse(moved["due_at"]) == datetime(2027, 5, 1, 14, tzinfo=UTC)
    assert moved["local_due_at"] == "2027-05-01T09:00:00"

    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=2))
    quiet = {"start": start, "end": end.strftime("%H:%M")}
    r = bob.http.put("/api/me", json={"timezone": "UTC", "quiet_hours": quiet})
    assert r.status_code == 200 and r.json()["quiet_hours"] == quiet
    due = now + timedelta(seconds=2)
    held = bob.create(title="Quiet", due_at=iso(due))
    loud = bob.create(title="Loud", due_at=iso(due), reminders=[{"before": "PT0S", "urgent": True}])
    [note] = bob.wait_inbox(1)
    assert note["task_id"] == loud["id"]

    def is_held() -> bool:
        reminder = bob.http.get(f"/api/tasks/{held['id']}").json()["reminders"][0]
        return reminder["held_until"] is not None

    wait_for(is_held)
    reminder = bob.http.get(f"/api/tasks/{held['id']}").json()["reminders"][0]
    assert reminder["state"] == "scheduled"
    assert parse(reminder["held_until"]) == end.replace(second=0, microsecond=0)
    assert len(bob.inbox()) == 1


def test_snooze_a_notification(bob: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1)
    task = bob.create(title="Call mum", due_at=iso(due))
    [note] = bob.wait_inbox(1)
    r = bob.http.post(f"/api/notifications/{note['id']}/snooze", json={"for": "PT1S"})
    assert r.status_code == 201, r.text
    snoozed = r.json()
    assert snoozed["snooze"] is True and snoozed["state"] == "scheduled"
    notes = bob.wait_inbox(2)
    again = next(n for n in notes if n["reminder_id"] == snoozed["id"])
    assert parse(again["fired_at"]) >= parse(snoozed["fire_at"])
    time.sleep(1)
    assert len(bob.inbox()) == 2
    bob.http.post(f"/api/tasks/{task['id']}/complete")
    done = bob.http.post(f"/api/notifications/{note['id']}/snooze", json={"for": "PT1M"})
    assert done.status_code == 409
    missing = bob.http.post("/api/notifications/nope/snooze", json={"for": "PT1M"})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("policy", "expect_late_note"), [("late", True), ("missed", False)], ids=["late", "missed"]
)
def test_reminders_missed_while_down(
    make_server: Callable[..., Server], policy: str, expect_late_note: bool
) -> None:
    env = {
        "DUETIME_JWT_SECRET": SECRET,
        "DUETIME_MISFIRE_GRACE": "1",
        "DUETIME_MISFIRE_POLICY": policy,
    }
    server = make_server(**env).start()
    user = User(server, "carol")
    try:
        due = datetime.now(UTC) + timedelta(seconds=2)
        task = user.create(title="While down", due_at=iso(due))
        server.kill()
        time.sleep(4.5)  # its time passes, and then the grace
        server.start()
        if expect_late_note:
            [note] = user.wait_inbox(1)
            assert note["late"] is True and note["lateness_ms"] > 1000
            state = "delivered"
        else:
            state = "missed"

        def settled() -> bool:
            got = user.http.get(f"/api/tasks/{task['id']}").json()["reminders"][0]["state"]
            return bool(got == state)

        wait_for(settled)
        time.sleep(0.5)
        assert len(user.inbox()) == (1 if expect_late_note else 0)
    finally:
        user.http.close()


BAD = [
    (
        "/api/tasks",
        {"title": "t", "due_at": "2027-01-01T09:00:00Z", "recurrence": "FREQ=SOMETIMES"},
    ),
    ("/api/tasks", {"title": "t", "due_at": "2027-01-01T09:00:00Z", "recurrence": "FREQ=SECONDLY"}),
    ("/api/tasks", {"title": "t", "due_at": "2027-01-01T09:00:00Z", "recurrence": "FREQ=MINUTELY"}),
    ("/api/tasks", {"title": "t", "due_at": "2027-01-01T09:00:00Z", "recurrence": "BYDAY=MO"}),
    (
        "/api/tasks",
        {"title": "t", "due_at": "2027-01-01T09:00:00Z", "recurrence": "FREQ=DAILY;UNTIL=20260101"},
    ),
    (
        "/api/tasks",
        {
            "title": "t",
            "due_at": "2027-01-01T09:00:00Z",
            "recurrence": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        },
    ),
    (
        "/api/tasks",
        {
            "title": "t",
            "due_at": "2027-01-01T09:00:00Z",
            "recurrence": "FREQ=DAILY;COUNT=2;UNTIL=20280101",
        },
    ),
    ("/api/tasks", {"title": "t", "due_at": "2027-01-01T09:00:00Z", "recurrence": 7}),
    ("/api/tasks", {"title": "t", "recurrence": "daily"}),
    ("/api/tasks", {"title": "t", "due_at": "2027-01-01T09:00:00Z", "repeat_after": "P0D"}),
    ("/api/tasks", {"title": "t", "due_at": "2027-01-01T09:00:00Z", "repeat_after": "soon"}),
    (
        "/api/tasks",
        {
            "title": "t",
            "due_at": "2027-01-01T09:00:00Z",
            "repeat_after": "P1D",
            "recurrence": "daily",
        },
    ),
    ("/api/tasks", {"title": "t", "due_at": "2027-01-01T09:00:00", "timezone": "Mars/Olympus"}),
    ("/api/me", {"timezone": "Not/AZone"}),
    ("/api/me", {"quiet_hours": {"start": "25:00", "end": "07:00"}}),
    ("/api/me", {"quiet_hours": {"start": "22:00", "end": "22:00"}}),
    ("/api/me", {"quiet_hours": {"start": "22:00"}}),
    ("/api/me", {"timezone": "UTC", "extra": 1}),
]


def test_bad_time_input_is_a_clear_422_and_writes_nothing(bob: User) -> None:
    for path, body in BAD:
        method = bob.http.put if path == "/api/me" else bob.http.post
        r = method(path, json=body)
        assert r.status_code == 422, (body, r.text)
        assert isinstance(r.json()["detail"], str | list) and r.json()["detail"]
    assert bob.http.get("/api/tasks").json()["tasks"] == []
    assert bob.http.get("/api/me").json() == {"timezone": None, "quiet_hours": None}


def test_bad_snooze_and_preview_input(bob: User) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1)
    bob.create(title="x", due_at=iso(due))
    [note] = bob.wait_inbox(1)
    url = f"/api/notifications/{note['id']}/snooze"
    for body in (
        {"for": "ten minutes"},
        {"for": "PT10M", "until": iso(due)},
        {},
        {"until": iso(due - timedelta(days=1))},
        {"until": "tomorrow"},
        {"for": "-PT1M"},
        {"for": "P5Y"},
    ):
        r = bob.http.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
    assert len(bob.http.get("/api/tasks").json()["tasks"][0]["reminders"]) == 1
    task_id = note["task_id"]
    assert bob.http.get(f"/api/tasks/{task_id}/occurrences?count=0").status_code == 422
    assert bob.http.get(f"/api/tasks/{task_id}/occurrences?count=1000").status_code == 422
    assert bob.http.get(f"/api/tasks/{task_id}/occurrences").json() == {"due_at": []}
    assert bob.http.get("/api/series/nope").status_code == 404
    assert bob.http.post("/api/series/nope/stop").status_code == 404
