"""Recurring tasks, the user's time zone, snooze, quiet hours and the misfire policy, through
TaskService with a real database. A manual clock drives the service; the reminders are in
2027, so the engine never fires them by itself: the tests fire them by hand at chosen times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duetime.db.engine import create_engine, migrate
from duetime.jobs import Trigger
from duetime.tasks.model import REMINDER_JOB_PREFIX, Reminder, ReminderSpec, Task, TaskRuleError
from duetime.tasks.profile import Profile, QuietHours
from duetime.tasks.recurrence import normalize
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.service import ReminderNotDue, TaskConflict, TaskInput, TaskService
from duetime.tasks.store import SqlTaskStore
from duetime.testing import InMemoryJobScheduler, ManualClock
from duetime.timefmt import parse_rfc3339

START = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)  # a Monday


class Parts:
    def __init__(self, url: str, *, skip_missed: bool = False) -> None:
        self.engine = create_engine(url)
        self.scheduler = InMemoryJobScheduler()
        self.relay = SchedulingRelay(self.engine, self.scheduler)
        self.store = SqlTaskStore(
            self.engine,
            scheduling=self.relay,
            misfire_grace_us=3_600_000_000,
            skip_missed=skip_missed,
        )
        self.clock = ManualClock(START)
        self.tasks = TaskService(self.store, self.clock)

    async def start(self) -> Parts:
        await migrate(self.engine)
        await self.scheduler.start()
        await self.relay.start()
        return self

    async def stop(self) -> None:
        await self.relay.stop()
        await self.scheduler.stop()
        await self.store.close()
        await self.engine.dispose()

    async def job(self, reminder: Reminder) -> dict[str, Any] | None:
        """The reminder's job as the engine holds it, once the relay has carried it."""
        for _ in range(200):
            if not await self.relay.pending(1):
                found = await self.scheduler.get(reminder.job_name)
                if found is None:
                    return None
                return {"due": found.job.due_time, "data": found.job.data}
            await asyncio.sleep(0.02)
        raise AssertionError("the outbox was not drained")

    async def fire(self, reminder: Reminder, task: Task, at: datetime) -> None:
        """Deliver the reminder's current trigger, as the engine would, at `at`."""
        job = await self.job(reminder)
        assert job is not None, "no job scheduled"
        self.clock.set(at)
        trigger = Trigger(reminder.job_name, job["data"], scheduled_at=at, fired_at=at)
        await self.tasks.on_reminder(trigger)

    async def inbox(self, user: str = "u") -> list[Any]:
        return await self.tasks.notifications(user, unread=False, after=None, limit=100)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Parts]:
    url = f"sqlite:///{tmp_path}/t.db" if request.param == "sqlite" else None
    p = await Parts(url or request.getfixturevalue("postgres_url")).start()
    p.scheduler.add_handler(REMINDER_JOB_PREFIX, p.tasks.on_reminder)
    yield p
    await p.stop()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- recurrence --------------------------------------------------------------------------
async def test_completing_an_occurrence_creates_the_next_with_its_reminder(parts: Parts) -> None:
    rule = normalize("FREQ=DAILY")
    [first], _ = await parts.tasks.create(
        "u",
        [
            TaskInput(
                title="stand-up",
                due_at=local("2027-03-12T09:00"),
                timezone="America/New_York",
                recurrence=rule,
            )
        ],
    )
    assert first.series_id and first.occurrence == 1
    assert first.due_at == datetime(2027, 3, 12, 14, 0, tzinfo=UTC)  # EST
    parts.clock.set(datetime(2027, 3, 12, 15, 0, tzinfo=UTC))
    await parts.tasks.complete("u", first.id)
    await parts.tasks.complete("u", first.id)  # twice: still one next occurrence

    _, history = await parts.tasks.series("u", first.series_id)
    assert [t.occurrence for t in history] == [1, 2]
    second = history[1]
    assert second.status == "open" and second.due_local == local("2027-03-13T09:00")
    parts.clock.set(datetime(2027, 3, 13, 15, 0, tzinfo=UTC))
    await parts.tasks.complete("u", second.id)
    third = (await parts.tasks.series("u", first.series_id))[1][2]
    # 09:00 stays 09:00 across the spring-forward night: EDT is UTC-4
    assert third.due_at == datetime(2027, 3, 14, 13, 0, tzinfo=UTC)
    job = await parts.job(third.reminders[0])
    assert job is not None and parse_rfc3339(job["due"]) == third.due_at
    assert third.reminders[0].state == "scheduled"


async def test_skip_count_and_stop(parts: Parts) -> None:
    [first], _ = await parts.tasks.create(
        "u",
        [
            TaskInput(
                title="pills",
                due_at=START + timedelta(hours=1),
                recurrence=normalize("FREQ=DAILY;COUNT=3"),
            )
        ],
    )
    skipped = await parts.tasks.skip("u", first.id)
    assert skipped.status == "skipped"
    assert all(r.state == "skipped" for r in skipped.reminders)
    _, history = await parts.tasks.series("u", first.series_id or "")
    await parts.tasks.complete("u", history[1].id)
    _, history = await parts.tasks.series("u", first.series_id or "")
    assert [t.occurrence for t in history] == [1, 2, 3]
    await parts.tasks.complete("u", history[2].id)  # COUNT=3: the series is over
    _, history = await parts.tasks.series("u", first.series_id or "")
    assert len(history) == 3

    [other], _ = await parts.tasks.create(
        "u", [TaskInput(title="x", due_at=START + timedelta(hours=1), recurrence="FREQ=WEEKLY")]
    )
    await parts.tasks.stop_series("u", other.series_id or "")
    await parts.tasks.complete("u", other.id)
    assert len((await parts.tasks.series("u", other.series_id or ""))[1]) == 1

    [plain], _ = await parts.tasks.create("u", [TaskInput(title="plain", due_at=START)])
    with pytest.raises(TaskRuleError, match="recurring"):
        await parts.tasks.skip("u", plain.id)


async def test_an_occurrence_edit_stays_put_and_a_series_edit_carries_on(parts: Parts) -> None:
    [first], _ = await parts.tasks.create(
        "u",
        [
            TaskInput(
                title="gym",
                due_at=local("2027-01-04T18:00"),
                timezone="Europe/London",
                recurrence="FREQ=WEEKLY;BYDAY=MO,WE",
            )
        ],
    )
    # moving this occurrence does not move the series: the next is still Wednesday 18:00
    moved = await parts.tasks.update(
        "u", first.id, {"title": "gym (late)", "due_at": local("2027-01-04T20:00")}
    )
    assert moved.occurrence_local == local("2027-01-04T18:00")
    with pytest.raises(TaskRuleError, match="scope=series"):
        await parts.tasks.update("u", first.id, {"recurrence": "FREQ=DAILY"})
    await parts.tasks.complete("u", first.id)
    _, history = await parts.tasks.series("u", first.series_id or "")
    second = history[1]
    assert (second.title, second.due_local) == ("gym", local("2027-01-06T18:00"))

    await parts.tasks.update(
        "u", second.id, {"title": "swim", "recurrence": "FREQ=WEEKLY;BYDAY=FR"}, whole_series=True
    )
    await parts.tasks.complete("u", second.id)
    third = (await parts.tasks.series("u", first.series_id or ""))[1][2]
    assert (third.title, third.due_local) == ("swim", local("2027-01-08T18:00"))


async def test_repeat_after_completion_keeps_the_time_of_day(parts: Parts) -> None:
    [first], _ = await parts.tasks.create(
        "u",
        [
            TaskInput(
                title="water plants",
                due_at=local("2027-01-04T08:00"),
                timezone="Europe/Paris",
                repeat_after="P3D",
            )
        ],
    )
    parts.clock.set(datetime(2027, 1, 5, 21, 0, tzinfo=UTC))  # done a day late, 22:00 Paris
    await parts.tasks.complete("u", first.id)
    nxt = (await parts.tasks.series("u", first.series_id or ""))[1][1]
    assert nxt.due_local == local("2027-01-08T08:00")
    assert await parts.tasks.occurrences("u", nxt.id, 5) == []  # depends on completion


async def test_preview_of_occurrences(parts: Parts) -> None:
    [task], _ = await parts.tasks.create(
        "u",
        [
            TaskInput(
                title="rent",
                due_at=local("2027-01-31T09:00"),
                timezone="Australia/Sydney",
                recurrence="FREQ=MONTHLY;BYMONTHDAY=-1",
            )
        ],
    )
    found = await parts.tasks.occurrences("u", task.id, 3)
    walls = [d.astimezone(ZoneInfo("Australia/Sydney")) for d in found]
    assert [(w.month, w.day, w.hour) for w in walls] == [(2, 28, 9), (3, 31, 9), (4, 30, 9)]


# -- the user's zone ---------------------------------------------------------------------
async def test_local_times_follow_the_user_and_instants_do_not(parts: Parts) -> None:
    with pytest.raises(TaskRuleError, match="PUT /api/me"):
        await parts.tasks.create("u", [TaskInput(title="?", due_at=local("2027-02-01T09:00"))])
    await parts.tasks.set_profile(Profile("u", "Europe/London"))
    created, _ = await parts.tasks.create(
        "u",
        [
            TaskInput(title="local", due_at=local("2027-02-01T09:00")),
            TaskInput(title="pinned", due_at=local("2027-02-01T09:00"), timezone="Europe/London"),
            TaskInput(title="instant", due_at=datetime(2027, 2, 1, 9, tzinfo=UTC)),
        ],
    )
    follows, pinned, instant = created
    assert follows.follows_user and not pinned.follows_user and not instant.follows_user
    assert follows.due_at == datetime(2027, 2, 1, 9, tzinfo=UTC)

    moved = await parts.tasks.set_profile(Profile("u", "Asia/Tokyo"))
    assert moved == 1
    follows = await parts.tasks.get("u", follows.id)
    assert follows.due_at == datetime(2027, 2, 1, 0, tzinfo=UTC)  # 09:00 in Tokyo
    assert follows.reminders[0].fire_at == follows.due_at
    job = await parts.job(follows.reminders[0])
    assert job is not None and parse_rfc3339(job["due"]) == follows.due_at
    assert (await parts.tasks.get("u", pinned.id)).due_at == pinned.due_at
    assert (await parts.tasks.get("u", instant.id)).due_at == instant.due_at


# -- snooze, quiet hours, misfires -------------------------------------------------------
async def test_snooze_delivers_once_more(parts: Parts) -> None:
    due = START + timedelta(days=1)
    [task], _ = await parts.tasks.create("u", [TaskInput(title="call", due_at=due)])
    await parts.fire(task.reminders[0], task, due)
    [note] = await parts.inbox()
    snoozed = await parts.tasks.snooze("u", note.id, due + timedelta(minutes=10))
    assert snoozed.snooze and snoozed.state == "scheduled"
    task = await parts.tasks.get("u", task.id)
    await parts.fire(snoozed, task, due + timedelta(minutes=10))
    await parts.fire(snoozed, task, due + timedelta(minutes=10))  # a duplicate trigger
    notes = await parts.inbox()
    assert len(notes) == 2
    # an edit of the due time keeps the snoozed reminder
    task = await parts.tasks.update("u", task.id, {"due_at": due + timedelta(days=1)})
    assert [r.snooze for r in task.reminders] == [False, True]
    await parts.tasks.complete("u", task.id)
    with pytest.raises(TaskConflict):
        await parts.tasks.snooze("u", note.id, due + timedelta(hours=5))


async def test_quiet_hours_hold_a_reminder_until_they_end(parts: Parts) -> None:
    await parts.tasks.set_profile(Profile("u", "Europe/London", QuietHours(time(22), time(7))))
    due = datetime(2027, 1, 10, 23, 15, tzinfo=UTC)
    [task, urgent], _ = await parts.tasks.create(
        "u",
        [
            TaskInput(title="quiet", due_at=due),
            TaskInput(
                title="loud",
                due_at=due,
                reminders=[ReminderSpec(before="PT0S", offset=timedelta(0), urgent=True)],
            ),
        ],
    )
    await parts.fire(task.reminders[0], task, due)
    await parts.fire(urgent.reminders[0], urgent, due)
    assert [n.title for n in await parts.inbox()] == ["loud"]
    held = (await parts.tasks.get("u", task.id)).reminders[0]
    release = datetime(2027, 1, 11, 7, 0, tzinfo=UTC)
    assert held.state == "scheduled" and held.held_until == release
    job = await parts.job(held)
    assert job is not None and parse_rfc3339(job["due"]) == release

    with pytest.raises(ReminderNotDue):  # early: refused, the engine will retry
        await parts.fire(held, task, release - timedelta(seconds=1))
    assert len(await parts.inbox()) == 1
    await parts.fire(held, task, release + timedelta(milliseconds=20))
    notes = {n.title: n for n in await parts.inbox()}
    assert notes["quiet"].scheduled_for_us == int(due.timestamp() * 1_000_000)
    assert notes["quiet"].lateness_ms == pytest.approx(20, abs=1)


async def test_a_reminder_past_the_misfire_grace_is_marked_late(parts: Parts) -> None:
    due = START + timedelta(days=2)
    [task], _ = await parts.tasks.create("u", [TaskInput(title="late", due_at=due)])
    await parts.fire(task.reminders[0], task, due + timedelta(hours=2))
    [note] = await parts.inbox()
    assert note.late


async def test_the_missed_policy_records_a_missed_reminder(tmp_path: Path) -> None:
    p = await Parts(f"sqlite:///{tmp_path}/m.db", skip_missed=True).start()
    try:
        due = START + timedelta(days=2)
        [task], _ = await p.tasks.create("u", [TaskInput(title="gone", due_at=due)])
        await p.fire(task.reminders[0], task, due + timedelta(hours=2))
        assert await p.inbox() == []
        assert (await p.tasks.get("u", task.id)).reminders[0].state == "missed"
        await p.fire(task.reminders[0], task, due + timedelta(hours=2))  # again: still missed
        assert await p.inbox() == []
        p.clock.set(START)
        on_time = await p.tasks.create("u", [TaskInput(title="ok", due_at=due)])
        await p.fire(on_time[0][0].reminders[0], on_time[0][0], due + timedelta(minutes=59))
        assert [n.late for n in await p.inbox()] == [False]
    finally:
        await p.stop()


async def test_deleting_the_open_occurrence_ends_the_series(parts: Parts) -> None:
    [first], _ = await parts.tasks.create(
        "u", [TaskInput(title="x", due_at=START + timedelta(hours=1), recurrence="FREQ=DAILY")]
    )
    await parts.tasks.complete("u", first.id)
    series, history = await parts.tasks.series("u", first.series_id or "")
    await parts.tasks.delete("u", history[1].id)
    series, history = await parts.tasks.series("u", first.series_id or "")
    assert not series.active and [t.status for t in history] == ["done"]


async def test_an_occurrence_keeps_its_due_time_while_the_series_runs(parts: Parts) -> None:
    [task], _ = await parts.tasks.create(
        "u", [TaskInput(title="x", due_at=START + timedelta(hours=1), recurrence="FREQ=DAILY")]
    )
    for whole_series in (False, True):
        with pytest.raises(TaskRuleError, match="needs a due_at"):
            await parts.tasks.update("u", task.id, {"due_at": None}, whole_series=whole_series)
    stopped = await parts.tasks.update(
        "u", task.id, {"recurrence": None, "due_at": None}, whole_series=True
    )
    assert stopped.due_at is None
    assert not (await parts.tasks.series("u", task.series_id or ""))[0].active
