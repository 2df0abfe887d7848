"""TaskService with a real database, scheduling through the outbox and inline: lost and
duplicate triggers, retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.clock import SystemClock
from duetime.db.engine import create_engine, migrate
from duetime.db.helpers import transaction
from duetime.jobs import Job, JobScheduler, JobState, Trigger
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore
from duetime.tasks.model import REMINDER_JOB_PREFIX
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.scheduling import InlineScheduling, Intent
from duetime.tasks.service import TaskInput, TaskService
from duetime.tasks.store import SqlTaskStore
from duetime.testing import InMemoryJobScheduler
from duetime.timefmt import to_micros


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
    def __init__(self, store: SqlTaskStore, scheduler: JobScheduler) -> None:
        self.store, self.scheduler = store, scheduler
        self.tasks = TaskService(store, SystemClock())
        scheduler.add_handler(REMINDER_JOB_PREFIX, self.tasks.on_reminder)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/tasks.db"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    await migrate(engine)
    yield engine
    await engine.dispose()


class Relayed(Parts):
    """A scheduler outside the database (like a Dapr sidecar), reached through the outbox."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.flaky = FlakyScheduler()
        self.relay = SchedulingRelay(engine, self.flaky)
        super().__init__(SqlTaskStore(engine, scheduling=self.relay), self.flaky)

    async def start(self) -> None:
        await self.flaky.start()
        await self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
        await self.flaky.stop()


class Inline(Parts):
    """The embedded engine on the same database: job rows written with their task."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        job_store = SqlJobStore(engine=engine)
        self.embedded = EmbeddedJobScheduler(job_store)
        self.inline = InlineScheduling(self.embedded, job_store)
        super().__init__(SqlTaskStore(engine, scheduling=self.inline), self.embedded)

    async def start(self) -> None:
        await self.embedded.start()

    async def stop(self) -> None:
        await self.embedded.stop()


@pytest.fixture
async def relayed(engine: AsyncEngine) -> AsyncIterator[Relayed]:
    parts = Relayed(engine)
    await parts.start()
    yield parts
    await parts.stop()


@pytest.fixture
async def inline(engine: AsyncEngine) -> AsyncIterator[Inline]:
    parts = Inline(engine)
    await parts.start()
    yield parts
    await parts.stop()


@pytest.fixture(params=["relayed", "inline"])
def parts(request: pytest.FixtureRequest, engine: AsyncEngine) -> Parts:
    running: Parts = request.getfixturevalue(request.param)
    return running


async def wait(check: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_writes_succeed_while_the_scheduler_is_down_and_nothing_is_lost(
    relayed: Relayed,
) -> None:
    parts, scheduler, relay = relayed, relayed.flaky, relayed.relay
    scheduler.down = True
    due = datetime.now(UTC) + timedelta(seconds=3)
    created, scheduled = await parts.tasks.create(
        "u", [TaskInput(title=f"t{i}", due_at=due) for i in range(20)]
    )
    assert scheduled == 20
    deleted = created[0]
    await parts.tasks.delete("u", deleted.id)
    await asyncio.sleep(0.5)  # the relay is retrying
    assert await scheduler.list_jobs() == []
    assert len(await relay.pending(100)) == 21

    scheduler.down = False

    async def scheduled_all() -> bool:
        outbox_empty = await relay.pending(100) == []
        return outbox_empty and len(await scheduler.list_jobs(limit=1000)) == 19

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


async def test_inline_jobs_commit_with_their_task_and_fire(
    inline: Inline,
) -> None:
    parts, scheduler = inline, inline.embedded
    due = datetime.now(UTC) + timedelta(milliseconds=500)
    created, _ = await parts.tasks.create(
        "u", [TaskInput(title=f"t{i}", due_at=due) for i in range(3)]
    )
    kept, moved, deleted = created
    for task in created:  # committed with the task: no relay in between
        assert await scheduler.get(task.reminders[0].job_name) is not None
    later = due + timedelta(seconds=1)
    await parts.tasks.update("u", moved.id, {"due_at": later})
    await parts.tasks.delete("u", deleted.id)
    assert await scheduler.get(deleted.reminders[0].job_name) is None

    async def delivered() -> bool:
        notes = await parts.tasks.notifications("u", unread=False, after=None, limit=10)
        return len(notes) == 2

    await wait(delivered)
    notes = await parts.tasks.notifications("u", unread=False, after=None, limit=10)
    expected = {kept.id: to_micros(due), moved.id: to_micros(later)}
    assert {n.task_id: n.scheduled_for_us for n in notes} == expected
    assert all(n.fired_us >= n.scheduled_for_us for n in notes)


async def test_inline_jobs_of_a_rolled_back_transaction_never_exist(
    inline: Inline,
) -> None:
    scheduler, scheduling = inline.embedded, inline.inline
    fired: list[Trigger] = []

    async def record(trigger: Trigger) -> None:
        fired.append(trigger)

    scheduler.add_handler("rollback-", record)
    job = {"dueTime": datetime.now(UTC).isoformat(), "data": None}
    with pytest.raises(Outage):
        async with transaction(inline.engine) as tx:
            await scheduling.write(tx, [Intent("rollback-1", job)])
            raise Outage("the task's write failed after its job was written")
    async with transaction(inline.engine) as tx:
        await scheduling.write(tx, [Intent("rollback-2", job)])

    async def fired_any() -> bool:
        return bool(fired)

    await wait(fired_any)
    await asyncio.sleep(0.3)
    assert [t.name for t in fired] == ["rollback-2"]
    assert await scheduler.get("rollback-1") is None
