"""Delivery with a real database: rows written with the notification, the worker's retries,
dead letters and replay, restarts, duplicate triggers; the event outbox and relay."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from duetime.clock import SystemClock
from duetime.db.engine import create_engine, migrate
from duetime.db.tables import deliveries as d_table
from duetime.delivery.model import ChannelSettings, Outcome, RetryPolicy
from duetime.delivery.outbox import DeliveryOutbox
from duetime.delivery.service import ChannelInput, DeliveryService
from duetime.delivery.store import ReplayConflict, SqlDeliveryStore
from duetime.delivery.worker import DeliveryWorker
from duetime.events.embedded import EmbeddedEventPublisher
from duetime.events.model import PublishedEvent
from duetime.events.relay import EventRelay
from duetime.events.store import SqlEventStore
from duetime.jobs import Trigger
from duetime.tasks.model import REMINDER_JOB_PREFIX, Task
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.service import TaskInput, TaskService
from duetime.tasks.store import SqlTaskStore
from duetime.testing import InMemoryJobScheduler, RecordingChannel

POLICY = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, attempt_timeout=2.0)


class Parts:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.clock = SystemClock()
        self.events = SqlEventStore(self.engine)
        self.deliveries = SqlDeliveryStore(self.engine)
        self.scheduler = InMemoryJobScheduler()
        self.relay = SchedulingRelay(self.engine, self.scheduler)
        self.store = SqlTaskStore(
            self.engine,
            scheduling=self.relay,
            on_fire=DeliveryOutbox(POLICY, email_available=True),
        )
        self.workers: list[DeliveryWorker] = []
        self.tasks = TaskService(self.store, self.clock, on_fire=self._fired)
        self.service = DeliveryService(
            self.deliveries, self.clock, allow_private=True, email_available=True
        )
        self.scheduler.add_handler(REMINDER_JOB_PREFIX, self.tasks.on_reminder)

    def _fired(self) -> None:
        for worker in self.workers:
            worker.kick()

    def worker(self, webhook: RecordingChannel, email: RecordingChannel) -> DeliveryWorker:
        worker = DeliveryWorker(
            self.deliveries,
            {"webhook": webhook, "email": email},
            self.clock,
            POLICY,
            concurrency=10,
        )
        self.workers.append(worker)
        return worker

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(d_table)) or 0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Parts]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/delivery.db"
    else:
        url = request.getfixturevalue("postgres_url")
    p = Parts(url)
    await migrate(p.engine)
    await p.scheduler.start()
    await p.relay.start()
    yield p
    await p.relay.stop()
    await p.scheduler.stop()
    await p.store.close()
    await p.deliveries.close()
    await p.engine.dispose()


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
    return found


async def _both_channels(p: Parts, user: str = "u") -> ChannelSettings:
    return await p.service.set_channels(
        user,
        ChannelInput("http://127.0.0.1:9/hook", True, "u@example.com", True),
    )


async def _fire_one(p: Parts, title: str = "t") -> Task:
    due = datetime.now(UTC) + timedelta(milliseconds=200)
    [task], _ = await p.tasks.create("u", [TaskInput(title=title, due_at=due)])
    await until(lambda: p.tasks.notifications("u", unread=False, after=None, limit=100))
    return task


async def test_deliveries_are_written_with_the_notification_and_survive_a_restart(
    parts: Parts,
) -> None:
    settings = await _both_channels(parts)
    await _fire_one(parts)
    assert await parts.count() == 2  # before any worker ran: rows, not memory

    webhook, email = RecordingChannel(), RecordingChannel()
    worker = parts.worker(webhook, email)
    await worker.start()  # a fresh process: finds the pending rows at start
    try:
        [hook] = await webhook.wait_for(1)
        [mail] = await email.wait_for(1)
        assert hook.secret == settings.webhook_secret and hook.attempt == 1
        assert hook.delivery.target == "http://127.0.0.1:9/hook"
        assert mail.delivery.target == "u@example.com"
        assert hook.event()["type"] == "io.duetime.reminder.due"

        async def both() -> bool:
            found = await parts.service.deliveries("u", state="delivered", after=None, limit=9)
            return len(found) == 2

        await until(both)
    finally:
        await worker.stop()


async def test_retries_with_backoff_then_dead_letter_then_one_replay(parts: Parts) -> None:
    await parts.service.set_channels("u", ChannelInput("http://127.0.0.1:9/h", True))
    down = Outcome(False, error="HTTP 503", http_status=503)
    webhook = RecordingChannel([down, down, down, Outcome(True, http_status=200)])
    worker = parts.worker(webhook, RecordingChannel())
    await worker.start()
    try:
        await _fire_one(parts)
        await webhook.wait_for(3)
        dead = await until(lambda: parts.service.deliveries("u", state="dead", after=None, limit=5))
        [(letter, attempts)] = dead
        assert [a.attempt for a in attempts] == [1, 2, 3]
        assert all(a.status == "failed" and a.http_status == 503 for a in attempts)
        gaps = [b.started_us - a.finished_us for a, b in itertools.pairwise(attempts)]
        assert all(0 <= g <= 2_000_000 for g in gaps)  # backoff ≤ max_delay, plus slack
        await asyncio.sleep(0.5)
        assert len(webhook.sent) == 3  # dead: no more attempts

        await parts.service.replay("u", letter.id)
        with pytest.raises(ReplayConflict, match="not a dead letter"):
            await parts.service.replay("u", letter.id)  # in flight: not twice
        worker.kick()
        await webhook.wait_for(4)
        await until(lambda: parts.service.deliveries("u", state="delivered", after=None, limit=5))
        await asyncio.sleep(0.3)
        assert len(webhook.sent) == 4
        assert {c.delivery.id for c in webhook.sent} == {letter.id}
    finally:
        await worker.stop()


async def test_duplicate_triggers_create_one_delivery_per_channel(parts: Parts) -> None:
    await _both_channels(parts)
    task = await _fire_one(parts)
    reminder = task.reminders[0]
    data = {"task_id": task.id, "reminder_id": reminder.id, "fire_at": reminder.fire_at.isoformat()}
    trigger = Trigger(
        reminder.job_name, data, scheduled_at=reminder.fire_at, fired_at=reminder.fire_at
    )
    await asyncio.gather(*(parts.tasks.on_reminder(trigger) for _ in range(5)))
    await parts.tasks.on_reminder(trigger)
    assert await parts.count() == 2
    events = await _drain(parts)
    assert [e.type for e in events].count("io.duetime.reminder.due") == 1


async def _drain(p: Parts) -> list[PublishedEvent]:
    publisher = EmbeddedEventPublisher()
    seen: list[PublishedEvent] = []
    publisher.subscribe(seen.append)
    await EventRelay(p.events, publisher, p.clock).drain()
    return seen


async def test_events_are_written_only_with_committed_changes_and_published_once(
    parts: Parts,
) -> None:
    [task], _ = await parts.tasks.create("u", [TaskInput(title="a")])
    stale = await parts.tasks.get("u", task.id)
    await parts.tasks.update("u", task.id, {"title": "b"})
    # A change that loses the race commits nothing, so it writes no event.
    assert not await parts.store.save(stale, stale.version, [], [])
    assert await parts.events.unpublished() == 2

    first = await _drain(parts)  # a relay after a restart publishes what was committed
    assert [e.type for e in first] == ["io.duetime.task.created", "io.duetime.task.updated"]
    assert [e.seq for e in first] == sorted(e.seq for e in first)
    assert await _drain(parts) == []  # recorded as published: not again
    log = await parts.events.read("u", after=0, limit=10)
    assert [e.seq for e in log] == [e.seq for e in first]
    assert await parts.events.read("someone-else", after=0, limit=10) == []


async def test_a_batch_writes_one_event_per_task(parts: Parts) -> None:
    created, _ = await parts.tasks.create("u", [TaskInput(title=f"t{i}") for i in range(1200)])
    log = await _drain(parts)
    assert len(log) == 1200
    assert [e.body["data"]["task_id"] for e in log] == [t.id for t in created]


async def test_on_sqlite_events_take_their_place_in_the_log_as_they_are_written(
    parts: Parts,
) -> None:
    created, _ = await parts.tasks.create("u", [TaskInput(title=f"t{i}") for i in range(3)])
    await parts.tasks.update("u", created[0].id, {"title": "changed"})
    before_relay = await parts.events.read("u", after=0, limit=10)
    if parts.engine.dialect.name == "sqlite":  # one writer: commit order is known at once
        assert [e.body["type"] for e in before_relay] == [
            *["io.duetime.task.created"] * 3,
            "io.duetime.task.updated",
        ]
    else:  # concurrent writers: the relay fixes the order after commit
        assert before_relay == []
    published = await _drain(parts)
    assert [e.seq for e in published] == sorted({e.seq for e in published})
    assert await parts.events.read("u", after=0, limit=10) == published
