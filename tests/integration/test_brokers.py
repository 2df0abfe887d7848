"""The broker wrappers run the real Redis and the real Kafka, on loopback only, and keep what
was written to them across a stop or a kill."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests import brokers
from tests.brokers import KafkaBroker, RedisServer

pytestmark = pytest.mark.brokers


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _listening(pid: int) -> set[tuple[Address, int]]:
    """Every TCP socket that process `pid` listens on, as (address, port), from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, hex_port = fields[1].split(":")
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((ipaddress.ip_address(raw), int(hex_port, 16)))
    return found


def _loopback(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # a Java dual-stack socket bound to 127.0.0.1
    return address.is_loopback


def _outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.255", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


def _assert_listens_on_loopback_only(pid: int | None, ports: set[int]) -> None:
    """The process listens on exactly `ports`, each on loopback only, and nothing answers
    on them at the machine's outward address."""
    assert pid is not None
    sockets = _listening(pid)
    assert {port for _, port in sockets} == ports, sockets
    assert all(_loopback(address) for address, _ in sockets), sockets
    outward = _outward_address()
    if outward is not None:
        for port in ports:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outward, port), timeout=2).close()


# Redis


def test_redis_is_the_real_server_and_keeps_a_stream(redis_server: RedisServer) -> None:
    stream = _name("stream")
    with redis_server.client(decode_responses=True) as r:
        assert r.ping() is True
        info = r.info("server")
        assert info["executable"] == brokers.REDIS_SERVER
        assert int(str(info["redis_version"]).split(".")[0]) >= 7
        ids = [r.xadd(stream, {"n": str(n)}) for n in range(3)]
        assert [(i, f["n"]) for i, f in r.xrange(stream)] == [(ids[n], str(n)) for n in range(3)]
        assert r.config_get("appendfsync") == {"appendfsync": "always"}
        assert r.config_get("protected-mode") == {"protected-mode": "yes"}
        assert r.config_get("save") == {"save": ""}


def test_redis_listens_on_loopback_only(redis_server: RedisServer) -> None:
    assert redis_server.address == f"127.0.0.1:{redis_server.port}"
    with redis_server.client(decode_responses=True) as r:
        assert r.config_get("bind") == {"bind": "127.0.0.1"}
    _assert_listens_on_loopback_only(redis_server.pid, {redis_server.port})


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_redis_stream_survives_a_restart(make_redis: Callable[..., RedisServer], how: str) -> None:
    server = make_redis()
    port, pid = server.port, server.pid
    with server.client() as r:
        ids = [r.xadd("events", {"n": str(n)}) for n in range(100)]
    getattr(server, how)()
    assert not server.running()
    server.restart()
    assert (server.port, server.running()) == (port, True)
    assert server.pid != pid
    with server.client(decode_responses=True) as r:
        entries = r.xrange("events")
    assert [i for i, _ in entries] == [i.decode() for i in ids]
    assert [f["n"] for _, f in entries] == [str(n) for n in range(100)]


# Kafka


def test_kafka_needs_its_jars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without DUETIME_KAFKA_LIBS the broker fixtures fail (never skip) and say what to run."""
    monkeypatch.delenv("DUETIME_KAFKA_LIBS", raising=False)
    with pytest.raises(brokers.BrokerNotFound, match=r"scripts/fetch-kafka\.sh"):
        KafkaBroker(tmp_path)
    monkeypatch.setenv("DUETIME_KAFKA_LIBS", str(tmp_path))
    with pytest.raises(brokers.BrokerNotFound, match=r"kafka_2\.13-4\.1\.1\.jar"):
        KafkaBroker(tmp_path)


async def _describe_cluster(bootstrap: str) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        cluster: dict[str, Any] = await admin.describe_cluster()
        return cluster
    finally:
        await admin.close()


def test_kafka_is_a_real_kraft_node_on_loopback_only(kafka_broker: KafkaBroker) -> None:
    cluster = asyncio.run(_describe_cluster(kafka_broker.bootstrap))
    assert cluster["controller_id"] == 1
    assert [(b["node_id"], b["host"], b["port"]) for b in cluster["brokers"]] == [
        (1, "127.0.0.1", kafka_broker.port)
    ]
    cmdline = Path(f"/proc/{kafka_broker.pid}/cmdline").read_bytes().split(b"\0")
    assert b"kafka.Kafka" in cmdline
    assert b"-Xmx512m" in cmdline
    _assert_listens_on_loopback_only(
        kafka_broker.pid, {kafka_broker.port, kafka_broker.controller_port}
    )


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    try:
        await producer.start()
        sent = [
            await producer.send(
                topic,
                json.dumps({"n": n}).encode(),
                key=f"k{n % 7}".encode(),
                headers=[("ce_id", f"id-{n}".encode())],
            )
            for n in range(count)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_kafka_idempotent_producer_writes_each_record_once(
    kafka_broker: KafkaBroker,
) -> None:
    topic = _name("thousand")
    assert kafka_broker.count(topic) == 0
    await _produce(kafka_broker.bootstrap, topic, 1000)
    assert kafka_broker.count(topic) == 1000
    records = kafka_broker.read(topic, timeout=30)
    assert [r["value"] for r in records] == [{"n": n} for n in range(1000)]
    assert [r["offset"] for r in records] == list(range(1000))
    assert records[8]["key"] == "k1"
    assert records[8]["headers"] == {"ce_id": "id-8"}


def test_kafka_records_survive_stop_and_restart(make_kafka: Callable[..., KafkaBroker]) -> None:
    broker = make_kafka()
    bootstrap = broker.bootstrap
    asyncio.run(_produce(bootstrap, "kept", 50))
    broker.stop()
    assert not broker.running()
    broker.restart()
    assert broker.bootstrap == bootstrap
    assert broker.count("kept") == 50
    assert [r["value"]["n"] for r in broker.read("kept", timeout=30)] == list(range(50))


async def test_kafka_consumer_group_commit_is_not_delivered_again(
    kafka_broker: KafkaBroker,
) -> None:
    topic, group = _name("grouped"), _name("group")
    await _produce(kafka_broker.bootstrap, topic, 10)

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_broker.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    first = consumer()
    try:
        await first.start()
        seen: list[int] = []
        while len(seen) < 10:
            batches = await asyncio.wait_for(first.getmany(timeout_ms=500), 30)
            seen += [json.loads(r.value)["n"] for rs in batches.values() for r in rs]
        await first.commit()
    finally:
        await first.stop()
    assert seen == list(range(10))

    second = consumer()
    try:
        await second.start()
        tp = TopicPartition(topic, 0)
        while tp not in second.assignment():
            await asyncio.wait_for(second.getmany(timeout_ms=200), 30)
        assert await second.committed(tp) == 10
        assert await second.position(tp) == 10
        assert await second.getmany(timeout_ms=500) == {}
        await _produce(kafka_broker.bootstrap, topic, 1)  # {"n": 0} again, at offset 10
        batches = await asyncio.wait_for(second.getmany(timeout_ms=5000), 30)
        assert [(r.offset, json.loads(r.value)) for r in batches.get(tp, [])] == [(10, {"n": 0})]
    finally:
        await second.stop()
