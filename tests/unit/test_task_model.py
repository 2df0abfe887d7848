"""Reminder rules of the task domain: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from duetime.tasks.model import ReminderSpec, Task, TaskRuleError, build_reminders
from duetime.tasks.service import KEEP, _reschedule

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DUE = NOW + timedelta(hours=2)


def spec(before: timedelta) -> ReminderSpec:
    return ReminderSpec(before=f"PT{int(before.total_seconds())}S", offset=before)


def test_default_is_one_reminder_at_the_due_time() -> None:
    [r] = build_reminders(None, DUE, NOW)
    assert r.fire_at == DUE and r.state == "scheduled" and r.job_name == f"duetime||reminder-{r.id}"
    assert build_reminders(None, None, NOW) == []
    assert build_reminders([], DUE, NOW) == []


def test_before_and_at() -> None:
    at = NOW + timedelta(minutes=5)
    early, fixed = build_reminders([spec(timedelta(minutes=30)), ReminderSpec(at=at)], DUE, NOW)
    assert early.fire_at == DUE - timedelta(minutes=30)
    assert fixed.fire_at == at and fixed.before is None


def test_a_reminder_already_past_is_skipped() -> None:
    [r] = build_reminders([spec(timedelta(hours=3))], DUE, NOW)
    assert r.state == "skipped"


def test_relative_reminder_needs_a_due_time() -> None:
    with pytest.raises(TaskRuleError, match="due_at"):
        build_reminders([spec(timedelta(minutes=1))], None, NOW)


def _task(reminders: list[ReminderSpec] | None, due: datetime | None) -> Task:
    task = Task(id="t", user_id="u", title="x", created_at=NOW, updated_at=NOW, due_at=due)
    task.reminders = build_reminders(reminders, due, NOW)
    return task


def test_moving_the_due_time_keeps_reminder_ids_and_overwrites_their_jobs() -> None:
    old = _task([spec(timedelta(minutes=10)), spec(timedelta(0))], DUE)
    moved = _task(None, DUE + timedelta(hours=1))
    reminders, intents = _reschedule(old, moved, KEEP, NOW)
    assert [r.id for r in reminders] == [r.id for r in old.reminders]
    assert [r.fire_at for r in reminders] == [
        DUE + timedelta(minutes=50),
        DUE + timedelta(hours=1),
    ]
    assert all(i.job is not None for i in intents) and len(intents) == 2


def test_removing_the_due_time_cancels_relative_reminders() -> None:
    at = NOW + timedelta(minutes=5)
    old = _task([spec(timedelta(0)), ReminderSpec(at=at)], DUE)
    undated = _task([], None)
    reminders, intents = _reschedule(old, undated, KEEP, NOW)
    assert [r.fire_at for r in reminders] == [at]
    assert reminders[0].id == old.reminders[0].id  # reused position 0, now the `at` one
    cancelled = [i.job_name for i in intents if i.job is None]
    assert cancelled == [old.reminders[1].job_name]


def test_fewer_reminders_cancel_the_rest() -> None:
    old = _task([spec(timedelta(minutes=m)) for m in (30, 20, 10)], DUE)
    reminders, intents = _reschedule(old, old, [spec(timedelta(minutes=5))], NOW)
    assert len(reminders) == 1
    assert sorted(i.job_name for i in intents if i.job is None) == sorted(
        r.job_name for r in old.reminders[1:]
    )


def test_none_means_the_default_reminder_and_delivered_ones_stay_delivered() -> None:
    old = _task(None, DUE)
    old.reminders[0].state = "delivered"
    same, intents = _reschedule(old, old, None, NOW)
    assert same[0].state == "delivered" and intents == []
    later = _task(None, DUE + timedelta(hours=1))
    moved, intents = _reschedule(old, later, None, NOW)
    assert moved[0].state == "scheduled" and len(intents) == 1
