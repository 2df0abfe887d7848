"""The Web Push channel against a push service stand-in on 127.0.0.1 that checks the VAPID
JWT and decrypts each push with the device's private key, with a real database: reminders
fired by the task service, fanned out one delivery per device, sent by the delivery worker;
expired subscriptions removed, retries, dead letters and the attempt log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from duetime import metrics
from duetime.clock import SystemClock
from duetime.db.engine import create_engine, migrate
from duetime.delivery.model import Attempt, Delivery, RetryPolicy
from duetime.delivery.outbox import DeliveryOutbox
from duetime.delivery.push import WebPushChannel
from duetime.delivery.push_service import PushService
from duetime.delivery.push_store import SqlPushSubscriptionStore
from duetime.delivery.service import ChannelInput, DeliveryService
from duetime.delivery.store import SqlDeliveryStore
from duetime.delivery.vapid import load_or_create_vapid_keys
from duetime.delivery.worker import DeliveryWorker
from duetime.settings import Settings
from duetime.tasks.model import REMINDER_JOB_PREFIX, Task
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.service import TaskInput, TaskService
from duetime.tasks.store import SqlTaskStore
from duetime.testing import InMemoryJobScheduler
from tests.push_service import Device, PushServiceStandIn

POLICY = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, attempt_timeout=5.0)
SUBJECT = "mailto:ops@duetime.test"


class Parts:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.engine = create_engine(url)
        self.clock = SystemClock()
        self.keys = load_or_create_vapid_keys(
            Settings(data_dir=data_dir, vapid_subject=SUBJECT)  # type: ignore[call-arg]
        )
        self.deliveries = SqlDeliveryStore(self.engine)
        self.subscriptions = SqlPushSubscriptionStore(self.engine)
        self.push = PushService(self.subscriptions, self.clock, self.keys, allow_private=True)
        self.channels = DeliveryService(
            self.deliveries, self.clock, allow_private=True, email_available=False
        )
        self.scheduler = InMemoryJobScheduler()
        self.relay = SchedulingRelay(self.engine, self.scheduler)
        self.store = SqlTaskStore(
            self.engine,
            scheduling=self.relay,
            on_fire=DeliveryOutbox(POLICY, email_available=False),
        )
        self.channel = WebPushChannel(
            self.subscriptions, self.keys, ttl=600, timeout=5, allow_private=True
        )
        self.worker = DeliveryWorker(
            self.deliveries, {"push": self.channel}, self.clock, POLICY, concurrency=10
        )
        self.tasks = TaskService(self.store, self.clock, on_fire=self.worker.kick)
        self.scheduler.add_handler(REMINDER_JOB_PREFIX, self.tasks.on_reminder)

    async def devices(self, service: PushServiceStandIn, user: str, *names: str) -> list[Device]:
        found = []
        for name in names:
            device = service.device(name, application_server_key=self.keys.public_key)
            body = device.to_json()
            await self.push.subscribe(
                user, body["endpoint"], body["keys"]["p256dh"], body["keys"]["auth"], name
            )
            found.append(device)
        await self.channels.set_channels(user, ChannelInput(push_enabled=True))
        return found

    async def fire(self, user: str, title: str) -> Task:
        due = datetime.now(UTC) + timedelta(milliseconds=300)
        [task], _ = await self.tasks.create(user, [TaskInput(title=title, due_at=due)])
        return task

    async def history(self, user: str) -> list[tuple[Delivery, list[Attempt]]]:
        return await self.deliveries.page(user, state=None, after=None, limit=100)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Parts]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/push.db"
    else:
        url = request.getfixturevalue("postgres_url")
    p = Parts(url, tmp_path / "data")
    await migrate(p.engine)
    await p.scheduler.start()
    await p.relay.start()
    await p.worker.start()
    yield p
    await p.worker.stop()
    await p.channel.aclose()
    await p.relay.stop()
    await p.scheduler.stop()
    await p.store.close()
    await p.deliveries.close()
    await p.engine.dispose()


@pytest.fixture
def service() -> Iterator[PushServiceStandIn]:
    s = PushServiceStandIn(subject=SUBJECT)
    yield s
    s.close()


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
    return found


def counted(outcome: str) -> float:
    return metrics.deliveries.labels("push", outcome)._value.get()  # type: ignore[no-any-return]


async def test_each_device_gets_one_encrypted_push_that_decrypts_to_the_reminder(
    parts: Parts, service: PushServiceStandIn
) -> None:
    laptop, phone = await parts.devices(service, "alice", "laptop", "phone")
    await parts.devices(service, "bob", "bobs")
    before = counted("success")
    task = await parts.fire("alice", "Pay rent")
    await asyncio.to_thread(
        service.wait_for, lambda: len(service.of("laptop")) == len(service.of("phone")) == 1
    )
    for device in (laptop, phone):
        [push] = service.of(device.name)
        assert push.problems == [] and push.status == 201
        data = push.data
        assert data["type"] == "reminder.due" and data["title"] == "Pay rent"
        assert data["task_id"] == task.id and data["message"] == "Pay rent is due now"
        assert [a["action"] for a in data["actions"]] == ["snooze", "done"]
        assert data["actions"][1]["path"] == f"/api/tasks/{task.id}/complete"
        assert push.claims is not None and push.claims["aud"] == service.origin
        assert push.claims["sub"] == SUBJECT
        assert push.headers["ttl"] == "600" and push.headers["urgency"] == "high"
        assert push.headers["topic"] == data["notification_id"]
        assert push.headers["content-encoding"] == "aes128gcm"
    assert service.of("laptop")[0].body != service.of("phone")[0].body  # each its own keys
    assert service.of("bobs") == []

    async def delivered() -> list[tuple[Delivery, list[Attempt]]] | None:
        found = await parts.history("alice")
        return found if all(d.state == "delivered" for d, _ in found) else None

    found = await until(delivered)
    assert len(found) == 2
    subscriptions = {s.label: s for s in await parts.push.subscriptions("alice")}
    assert {d.device for d, _ in found} == {s.id for s in subscriptions.values()}
    for d, attempts in found:
        assert d.channel == "push" and d.attempts == 1
        assert [(a.attempt, a.status, a.http_status) for a in attempts] == [(1, "delivered", 201)]
    assert all(s.last_success_us is not None for s in subscriptions.values())
    assert counted("success") - before == 2


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_subscription_is_removed_and_not_retried(
    parts: Parts, service: PushServiceStandIn, status: int
) -> None:
    _, kept = await parts.devices(service, "alice", "old", "kept")
    service.answer["old"] = status
    await parts.fire("alice", "Water the plants")

    async def settled() -> list[tuple[Delivery, list[Attempt]]] | None:
        found = await parts.history("alice")
        done = len(found) == 2 and all(d.state != "pending" for d, _ in found)
        return found if done else None

    found = await until(settled)
    by_state = {d.state: (d, a) for d, a in found}
    dead, attempts = by_state["dead"]
    assert dead.attempts == 1 and f"HTTP {status}" in (dead.last_error or "")
    assert [(a.status, a.http_status) for a in attempts] == [("failed", status)]
    assert by_state["delivered"][0].target == kept.endpoint
    assert [s.label for s in await parts.push.subscriptions("alice")] == ["kept"]
    assert len(service.of("old")) == 1 and service.of("old")[0].problems == []

    await parts.fire("alice", "Again")  # the next reminder goes to the device that is left
    await asyncio.to_thread(service.wait_for, lambda: len(service.of("kept")) == 2)
    await asyncio.sleep(0.3)
    assert len(service.of("old")) == 1


async def test_server_errors_are_retried_then_dead_lettered_with_every_attempt_logged(
    parts: Parts, service: PushServiceStandIn
) -> None:
    await parts.devices(service, "alice", "flaky", "broken")
    service.answer["flaky"] = lambda n: 500 if n == 1 else 429 if n == 2 else 201
    service.answer["broken"] = 503
    before = counted("dead_lettered")
    await parts.fire("alice", "Call mum")

    async def settled() -> list[tuple[Delivery, list[Attempt]]] | None:
        found = await parts.history("alice")
        done = len(found) == 2 and all(d.state != "pending" for d, _ in found)
        return found if done else None

    found = await until(settled)
    by_target = {d.target.rsplit("/", 1)[1]: (d, a) for d, a in found}
    flaky, flaky_attempts = by_target["flaky"]
    assert flaky.state == "delivered" and flaky.attempts == 3
    assert [(a.status, a.http_status) for a in flaky_attempts] == [
        ("failed", 500),
        ("failed", 429),
        ("delivered", 201),
    ]
    broken, broken_attempts = by_target["broken"]
    assert broken.state == "dead" and broken.attempts == POLICY.max_attempts
    assert [a.http_status for a in broken_attempts] == [503] * POLICY.max_attempts
    assert broken.last_error == "HTTP 503"
    assert all(p.problems == [] for p in service.pushes)  # every attempt was a valid push
    texts = {p.plaintext for p in service.of("flaky")}
    assert len(texts) == 1  # the same reminder each time (freshly encrypted)
    assert len({p.body for p in service.of("flaky")}) == 3
    [broken_sub] = [s for s in await parts.push.subscriptions("alice") if s.label == "broken"]
    assert broken_sub.last_error == "HTTP 503" and broken_sub.last_failure_us is not None
    assert counted("dead_lettered") - before == 1


async def test_push_off_or_no_device_writes_no_push_delivery(
    parts: Parts, service: PushServiceStandIn
) -> None:
    await parts.devices(service, "alice", "laptop")
    await parts.channels.set_channels("alice", ChannelInput(push_enabled=False))
    await parts.channels.set_channels("bob", ChannelInput(push_enabled=True))  # no device
    await parts.fire("alice", "Quiet")
    await parts.fire("bob", "Nowhere")
    await until(lambda: parts.tasks.notifications("alice", unread=False, after=None, limit=10))
    await until(lambda: parts.tasks.notifications("bob", unread=False, after=None, limit=10))
    await asyncio.sleep(0.3)
    assert await parts.history("alice") == [] and await parts.history("bob") == []
    assert service.pushes == []


async def test_a_removed_device_fails_its_pending_delivery_permanently(
    parts: Parts, service: PushServiceStandIn
) -> None:
    await parts.devices(service, "alice", "laptop")
    [subscription] = await parts.push.subscriptions("alice")
    await parts.worker.stop()  # the delivery waits while the device is removed
    await parts.fire("alice", "Gone")
    await until(lambda: parts.history("alice"))
    await parts.push.unsubscribe("alice", subscription.id)
    await parts.worker.start()
    [(dead, attempts)] = await until(
        lambda: _if(parts.history("alice"), lambda f: f[0][0].state == "dead")
    )
    assert "removed" in (dead.last_error or "") and len(attempts) == 1
    assert service.pushes == []


async def _if(found: Awaitable[Any], check: Callable[[Any], bool]) -> Any:
    value = await found
    return value if value and check(value) else None
