"""TaskService with a real database: the scheduling outbox, duplicate triggers, retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from duetime.clock import SystemClock
from duetime.db.engine import create_engine, migrate
from duetime.jobs import Job, JobState, Trigger
from duetime.tasks.model import REMINDER_JOB_PREFIX
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.service import TaskInput, TaskService
from duetime.tasks.store import SqlTaskStore
from duetime.testing import InMemoryJobScheduler


class Outage(ConnectionError):
    pass


class FlakyScheduler(InMemoryJobScheduler):
    """The in-memory engine behind a switch: while `down`, every call fails like an
    unreachable Dapr sidecar."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise Outage("scheduler unreachable")

    async def schedule_many(self, jobs: Sequence[Job], *, overwrite: bool = False) -> None:
        self._check()
        await super().schedule_many(jobs, overwrite=overwrite)

    async def schedule(self, job: Job, *, overwrite: bool = False) -> JobState:
        self._check()
        return await super().schedule(job, overwrite=overwrite)

    async def delete(self, name: str) -> bool:
        self._check()
        return await super().delete(name)


class Parts:
    def __init__(self, store: SqlTaskStore, scheduler: FlakyScheduler, relay: SchedulingRelay):
        self.store, self.scheduler, self.relay = store, scheduler, relay
        self.tasks = TaskService(store, relay, SystemClock())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Parts]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/tasks.db"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    await migrate(engine)
    store = SqlTaskStore(engine)
    scheduler = FlakyScheduler()
    relay = SchedulingRelay(store, scheduler)
    p = Parts(store, scheduler, relay)
    scheduler.add_handler(REMINDER_JOB_PREFIX, p.tasks.on_reminder)
    await scheduler.start()
    await relay.start()
    yield p
    await relay.stop()
    await scheduler.stop()
    await engine.dispose()


async def wait(check: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_writes_succeed_while_the_scheduler_is_down_and_nothing_is_lost(
    parts: Parts,
) -> None:
    parts.scheduler.down = True
    due = datetime.now(UTC) + timedelta(seconds=3)
    created, scheduled = await parts.tasks.create(
        "u", [TaskInput(title=f"t{i}", due_at=due) for i in range(20)]
    )
    assert scheduled == 20
    deleted = created[0]
    await parts.tasks.delete("u", deleted.id)
    await asyncio.sleep(0.5)  # the relay is retrying
    assert await parts.scheduler.list_jobs() == []
    assert len(await parts.store.pending_intents(100)) == 21

    parts.scheduler.down = False

    async def scheduled_all() -> bool:
        outbox_empty = await parts.store.pending_intents(100) == []
        return outbox_empty and len(await parts.scheduler.list_jobs(limit=1000)) == 19

    await wait(scheduled_all)

    async def delivered() -> bool:
        return len(await parts.tasks.notifications("u", unread=False, after=None, limit=100)) == 19

    await wait(delivered)
    notes = await parts.tasks.notifications("u", unread=False, after=None, limit=100)
    assert deleted.id not in {n.task_id for n in notes}


async def test_the_same_trigger_twice_gives_one_notification(parts: Parts) -> None:
    due = datetime.now(UTC) + timedelta(milliseconds=300)
    [task], _ = await parts.tasks.create("u", [TaskInput(title="once", due_at=due)])

    async def delivered() -> bool:
        return len(await parts.tasks.notifications("u", unread=False, after=None, limit=10)) > 0

    await wait(delivered)  # the engine's own trigger
    reminder = task.reminders[0]
    data = {"task_id": task.id, "reminder_id": reminder.id, "fire_at": due.isoformat()}
    trigger = Trigger(reminder.job_name, data, scheduled_at=due, fired_at=due)
    await asyncio.gather(parts.tasks.on_reminder(trigger), parts.tasks.on_reminder(trigger))
    await parts.tasks.on_reminder(trigger)
    notes = await parts.tasks.notifications("u", unread=False, after=None, limit=10)
    assert len(notes) == 1
    moved = {**data, "fire_at": (due - timedelta(minutes=1)).isoformat()}
    stale = Trigger(reminder.job_name, moved, scheduled_at=due, fired_at=due)
    await parts.tasks.on_reminder(stale)  # from before the reminder moved: ignored
    assert len(await parts.tasks.notifications("u", unread=False, after=None, limit=10)) == 1


async def test_retention_deletes_only_old_completed_tasks(parts: Parts) -> None:
    created, _ = await parts.tasks.create(
        "u", [TaskInput(title="old"), TaskInput(title="new"), TaskInput(title="open")]
    )
    old, new, _ = created
    await parts.tasks.complete("u", old.id)
    await asyncio.sleep(0.3)
    await parts.tasks.complete("u", new.id)
    assert await parts.tasks.purge(timedelta(seconds=0.15)) == 1
    remaining = {t.title for t in await parts.tasks.find("u", _all())}
    assert remaining == {"new", "open"}


def _all() -> Any:
    from duetime.tasks.store import TaskQuery

    return TaskQuery(limit=100)
