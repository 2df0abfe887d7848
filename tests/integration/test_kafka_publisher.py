"""The Kafka publisher behind the event relay, against a real Kafka broker: each event of the
outbox is one record, once, keyed by its subject, in log order per key; a broker that is away
holds the events back (nothing is marked published) and gets them all, once, when it returns;
relays of processes sharing an outbox (SQLite file lock, PostgreSQL advisory lock) publish
each event once between them.

What is checked at the broker is read from the broker (offsets and records), not from duetime.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
import warnings
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.clock import SystemClock
from duetime.db.engine import create_engine, migrate
from duetime.events.kafka import KafkaEventPublisher
from duetime.events.model import (
    REMINDER_TOPIC,
    TASK_TOPIC,
    OutgoingEvent,
    PublishedEvent,
    cloud_event,
)
from duetime.events.relay import EventRelay, relay_lock
from duetime.events.store import SqlEventStore, write_events
from tests.brokers import KafkaBroker

pytestmark = pytest.mark.brokers

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CE_JSON = "application/cloudevents+json"


def task_events(keys: list[str], per_key: int, *, start: int = 0) -> list[OutgoingEvent]:
    """`per_key` events for each task in `keys`, interleaved across tasks; `data.n` counts
    each task's events (from `start`), so the order per key can be read at the broker."""
    return [
        OutgoingEvent(
            "alice",
            TASK_TOPIC,
            cloud_event(
                topic=TASK_TOPIC,
                type_="task.updated",
                subject=f"tasks/{key}",
                time=NOW,
                data={"task_id": key, "n": n, "title": "Zahlung fällig ✓"},
            ),
        )
        for n in range(start, start + per_key)
        for key in keys
    ]


def reminder_events(count: int) -> list[OutgoingEvent]:
    return [
        OutgoingEvent(
            "bob",
            REMINDER_TOPIC,
            cloud_event(
                topic=REMINDER_TOPIC,
                type_="reminder.due",
                subject=f"tasks/r{i}",
                time=NOW,
                data={"notification_id": f"note-{i}"},
            ),
        )
        for i in range(count)
    ]


async def write(engine: AsyncEngine, events: list[OutgoingEvent]) -> None:
    """Commit `events` to the outbox, as a service's transaction does."""
    async with engine.begin() as conn:
        await write_events(conn, events, SystemClock().now_micros())


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not in {timeout} s"
        await asyncio.sleep(0.05)
    return found


def ids_at(broker: KafkaBroker, topic: str, count: int) -> Counter[str]:
    records = broker.read(topic, timeout=60, at_least=count)
    return Counter(r["value"]["id"] for r in records)


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path}/events.db")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def make_publisher() -> AsyncIterator[Callable[..., KafkaEventPublisher]]:
    made: list[KafkaEventPublisher] = []

    def make(bootstrap: str, **options: Any) -> KafkaEventPublisher:
        publisher = KafkaEventPublisher(bootstrap, **options)
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        await publisher.aclose()


async def test_each_event_is_one_record_keyed_by_its_subject_in_log_order(
    make_kafka: Callable[..., KafkaBroker],
    make_publisher: Callable[..., KafkaEventPublisher],
    sqlite_engine: AsyncEngine,
) -> None:
    broker = make_kafka(partitions=3)
    keys = [f"k{i}" for i in range(6)]
    tasks = task_events(keys, 20)
    reminders = reminder_events(7)
    await write(sqlite_engine, tasks[:60])
    await write(sqlite_engine, reminders)
    await write(sqlite_engine, tasks[60:])
    store = SqlEventStore(sqlite_engine)
    publisher = make_publisher(broker.bootstrap, topic_prefix="acme.duetime.")
    relay = EventRelay(store, publisher, SystemClock(), engine=sqlite_engine, batch=17)

    assert await relay.drain() == len(tasks) + len(reminders)
    assert await store.unpublished() == 0

    records = broker.read("acme.duetime.task-events", timeout=60, at_least=len(tasks))
    assert broker.count("acme.duetime.task-events") == len(tasks) == 120
    assert broker.count("acme.duetime.reminders") == len(reminders)
    # the prefix applies to every topic: nothing went to the bare names
    assert broker.count(TASK_TOPIC) == 0 and broker.count(REMINDER_TOPIC) == 0

    written = {e.id: e.body for e in tasks}
    assert Counter(r["value"]["id"] for r in records) == Counter(list(written))  # each once
    for r in records:
        assert r["value"] == written[r["value"]["id"]]  # the CloudEvent, with duetime's id
        assert r["key"] == r["value"]["subject"]
        assert r["headers"] == {"content-type": CE_JSON}

    per_key: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for r in records:  # offset order within each partition
        per_key[r["key"]].append(r["value"]["data"]["n"])
        partitions[r["key"]].add(r["partition"])
    assert per_key == {f"tasks/{k}": list(range(20)) for k in keys}
    assert all(len(p) == 1 for p in partitions.values())  # one task, one partition
    assert len(set().union(*partitions.values())) > 1  # ... and the tasks spread out

    dues = broker.read("acme.duetime.reminders", timeout=30, at_least=len(reminders))
    assert {r["value"]["id"]: r["value"] for r in dues} == {e.id: e.body for e in reminders}
    assert all(r["key"] == r["value"]["subject"] for r in dues)

    # recorded as published: a later drain (a restart, a sweep) sends nothing again
    assert await relay.drain() == 0
    assert broker.count("acme.duetime.task-events") == len(tasks)


async def test_broker_down_drain_raises_and_nothing_is_marked_published(
    make_kafka: Callable[..., KafkaBroker],
    make_publisher: Callable[..., KafkaEventPublisher],
    sqlite_engine: AsyncEngine,
) -> None:
    broker = make_kafka()
    broker.stop()
    events = task_events(["a", "b"], 10)
    await write(sqlite_engine, events)
    store = SqlEventStore(sqlite_engine)
    publisher = make_publisher(broker.bootstrap)
    relay = EventRelay(store, publisher, SystemClock(), engine=sqlite_engine)

    # (the producers a failed connect leaves unclosed are the next test's subject)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(2):  # and again: a retry fails the same way, it does not hang
            with pytest.raises(KafkaError):
                await asyncio.wait_for(relay.drain(), 60)
            assert await store.unpublished() == len(events)
        gc.collect()

    await asyncio.to_thread(broker.restart)
    assert await relay.drain() == len(events)
    assert await store.unpublished() == 0
    assert ids_at(broker, TASK_TOPIC, len(events)) == Counter(e.id for e in events)
    assert broker.count(TASK_TOPIC) == len(events)


async def test_a_connect_that_fails_leaves_no_producer_open(
    make_kafka: Callable[..., KafkaBroker],
    make_publisher: Callable[..., KafkaEventPublisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The relay retries a failing publish for as long as the broker is away (with a backoff
    # of at most 30 s): each attempt must not leave a client behind.
    broker = make_kafka()
    broker.stop()
    publisher = make_publisher(broker.bootstrap)
    [event] = task_events(["a"], 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            with pytest.raises(KafkaError):
                await publisher.publish([PublishedEvent(1, "alice", event.topic, event.body)])
        gc.collect()
        await asyncio.sleep(0)
    unclosed = [str(w.message) for w in caught if "Unclosed AIOKafkaProducer" in str(w.message)]
    assert unclosed == []
    assert "Unclosed AIOKafkaProducer" not in caplog.text


async def test_the_relay_holds_events_while_the_broker_is_away_then_publishes_each_once(
    make_kafka: Callable[..., KafkaBroker],
    make_publisher: Callable[..., KafkaEventPublisher],
    sqlite_engine: AsyncEngine,
) -> None:
    broker = make_kafka()
    store = SqlEventStore(sqlite_engine)
    publisher = make_publisher(broker.bootstrap)
    relay = EventRelay(store, publisher, SystemClock(), engine=sqlite_engine, batch=25)
    before = task_events(["a", "b", "c"], 4)
    await relay.start()
    try:
        await write(sqlite_engine, before)
        relay.kick()
        await until(lambda: _none_pending(store), 30, "the first events published")

        await asyncio.to_thread(broker.stop)  # the producer is connected: now it is not
        during = task_events(["a", "b", "c"], 20, start=4)
        for part in (during[:30], during[30:]):
            await write(sqlite_engine, part)
            relay.kick()
            await asyncio.sleep(1.5)
            # nothing is recorded as published that the broker has not taken
            assert await store.unpublished() >= len(part)
        assert await store.unpublished() == len(during)

        await asyncio.to_thread(broker.restart)
        await until(lambda: _none_pending(store), 90, "the held events published")
    finally:
        await relay.stop()

    everything = before + during
    records = await asyncio.to_thread(broker.read, TASK_TOPIC, timeout=60, at_least=len(everything))
    assert Counter(r["value"]["id"] for r in records) == Counter(e.id for e in everything)
    assert broker.count(TASK_TOPIC) == len(everything)
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        per_key[r["key"]].append(r["value"]["data"]["n"])
    assert per_key == {f"tasks/{k}": list(range(24)) for k in "abc"}


async def _none_pending(store: SqlEventStore) -> bool:
    return await store.unpublished() == 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One outbox for two processes: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_two_relays_sharing_an_outbox_publish_each_event_once(
    kafka_broker: KafkaBroker,
    make_publisher: Callable[..., KafkaEventPublisher],
    shared_url: str,
) -> None:
    # Two relays as two processes have them: each its own engine (connections) and its own
    # producer, on one database, draining at the same time while events are committed.
    prefix = f"shared-{uuid.uuid4().hex[:8]}."
    engines = [create_engine(shared_url), create_engine(shared_url)]
    await migrate(engines[0])
    try:
        stores = [SqlEventStore(e) for e in engines]
        relays = [
            EventRelay(
                store,
                make_publisher(kafka_broker.bootstrap, topic_prefix=prefix),
                SystemClock(),
                engine=engine,
                batch=7,
            )
            for store, engine in zip(stores, engines, strict=True)
        ]
        keys = [f"t{i}" for i in range(10)]
        parts = [task_events(keys, 3, start=3 * i) for i in range(10)]  # 300 events
        done = asyncio.Event()

        async def writer() -> None:
            for i, part in enumerate(parts):
                await write(engines[i % 2], part)
                await asyncio.sleep(0.02)
            done.set()

        async def drain(relay: EventRelay, store: SqlEventStore) -> int:
            total = 0
            while True:
                finished = done.is_set()
                total += await relay.drain()
                if finished and await store.unpublished() == 0:
                    return total
                await asyncio.sleep(0.005)

        writing = asyncio.create_task(writer())
        first, second = await asyncio.wait_for(
            asyncio.gather(*(drain(r, s) for r, s in zip(relays, stores, strict=True))), 120
        )
        await writing
    finally:
        for engine in engines:
            await engine.dispose()

    everything = [e for part in parts for e in part]
    assert first + second == len(everything) == 300
    topic = prefix + TASK_TOPIC
    records = kafka_broker.read(topic, timeout=60, at_least=len(everything))
    assert Counter(r["value"]["id"] for r in records) == Counter(e.id for e in everything)
    assert kafka_broker.count(topic) == len(everything)
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        per_key[r["key"]].append(r["value"]["data"]["n"])
    assert per_key == {f"tasks/{k}": list(range(30)) for k in keys}


async def test_a_relay_waits_while_another_process_holds_the_relay_lock(
    kafka_broker: KafkaBroker,
    make_publisher: Callable[..., KafkaEventPublisher],
    shared_url: str,
) -> None:
    prefix = f"held-{uuid.uuid4().hex[:8]}."
    holder, waiter = create_engine(shared_url), create_engine(shared_url)
    await migrate(holder)
    try:
        events = task_events(["x"], 5)
        await write(holder, events)
        store = SqlEventStore(waiter)
        publisher = make_publisher(kafka_broker.bootstrap, topic_prefix=prefix)
        relay = EventRelay(store, publisher, SystemClock(), engine=waiter)
        async with relay_lock(holder):  # another process is draining
            draining = asyncio.create_task(relay.drain())
            await asyncio.sleep(1.0)
            assert not draining.done()
            assert await store.unpublished() == len(events)
            assert kafka_broker.count(prefix + TASK_TOPIC) == 0
        assert await asyncio.wait_for(draining, 30) == len(events)
    finally:
        await holder.dispose()
        await waiter.dispose()
    assert ids_at(kafka_broker, prefix + TASK_TOPIC, len(events)) == Counter(e.id for e in events)
