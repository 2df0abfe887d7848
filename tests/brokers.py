"""Real message brokers for the tests: a Redis server and a single-node Kafka broker.

Each is a child process that listens on 127.0.0.1 only and keeps its data in `data_dir`, so
`stop()` + `restart()` (or `kill()` + `restart()`) brings back the same server on the same
ports with the same data. Output goes to a log file in `data_dir`; every error quotes it.

- `RedisServer`: Debian's `redis-server`, append-only file fsynced on every write (a record
  acknowledged before a `kill()` is there after the restart), no RDB snapshots.
- `KafkaBroker`: Apache Kafka in KRaft mode (broker and controller in one JVM) from the jars
  that scripts/fetch-kafka.sh caches; their directory comes from `DUETIME_KAFKA_LIBS`.

Anything still running when the interpreter exits is stopped then.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from redis.backoff import NoBackoff
from redis.retry import Retry

from duetime.localdapr import free_port

T = TypeVar("T")

KAFKA_VERSION = "4.1.1"
REDIS_SERVER = "/usr/bin/redis-server"
_PROBE_TOPIC = "duetime-probe"

_running: set[_Broker] = set()


class BrokerNotFound(RuntimeError):
    """The broker's binaries are not installed (scripts/test.sh installs both)."""


class _Broker:
    """A child process with its output in `log`."""

    name = "broker"

    def __init__(self, data_dir: Path, log_name: str) -> None:
        self.data_dir = data_dir
        self.log = data_dir / log_name
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def _spawn(self, args: list[str]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches pytest, not them
            )
        _running.add(self)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def _since_spawn(self) -> str:
        """What the process logged since it was last started."""
        try:
            with self.log.open("rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def report(self) -> str:
        """The first errors of the last start (a JVM logs many lines after them), then the
        log's tail: for error messages."""
        errors = [line for line in self._since_spawn().splitlines() if "ERROR" in line][:3]
        head = "\n".join(errors) + "\n...\n" if errors else ""
        return head + self.tail()

    def _wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited: {self.report()}")
            if ready():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not ready in {timeout:.0f} s: {self.report()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, wait for a clean shutdown (at most `timeout`, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        _running.discard(self)

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed that was not flushed already."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        _running.discard(self)


@atexit.register
def _stop_all() -> None:
    for broker in list(_running):
        broker.stop(timeout=5)


def _bind_failed(broker: _Broker) -> bool:
    return not broker.running() and "already in use" in broker._since_spawn()


class RedisServer(_Broker):
    """Debian's redis-server on 127.0.0.1 with an append-only file in `data_dir`."""

    name = "redis-server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, "redis.log")
        self._own_port = port is None  # picked here: may be taken before the server binds it
        self.port = port or free_port()
        self._started = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **options: Any) -> redis.Redis:
        """A new client for this server (`options` go to `redis.Redis`); close it after use."""
        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def _config(self) -> str:
        return "\n".join(
            [
                "bind 127.0.0.1",
                f"port {self.port}",
                "protected-mode yes",
                "daemonize no",
                'logfile ""',  # stdout, which is our log file
                f'dir "{self.data_dir}"',
                "appendonly yes",
                "appendfsync always",
                'save ""',
                "",
            ]
        )

    def start(self, timeout: float = 30.0) -> RedisServer:
        """Start and wait until the server answers PING (and has loaded its data)."""
        if not os.access(REDIS_SERVER, os.X_OK):
            raise BrokerNotFound(
                f"{REDIS_SERVER} not found: run ./scripts/test.sh, which installs it"
            )
        for attempt in range(3):
            config = self.data_dir / "redis.conf"
            self.data_dir.mkdir(parents=True, exist_ok=True)
            config.write_text(self._config())
            self._spawn([REDIS_SERVER, str(config)])
            try:
                self._wait_ready(self._answers_ping, timeout)
            except RuntimeError:
                if self._started or not self._own_port or attempt == 2:
                    raise
                if not _bind_failed(self):
                    raise
                self.port = free_port()
                continue
            self._started = True
            return self
        raise AssertionError("unreachable")

    def _answers_ping(self) -> bool:
        try:
            # one try: redis-py's default retries with backoff would hide an exit for seconds
            with self.client(
                socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
            ) as client:
                return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False

    def restart(self, timeout: float = 30.0) -> RedisServer:
        """Stop (if running) and start again on the same port with the same data."""
        self.stop()
        return self.start(timeout)


def kafka_libs() -> Path:
    """The directory of Kafka's jars, from `DUETIME_KAFKA_LIBS`."""
    value = os.environ.get("DUETIME_KAFKA_LIBS")
    if not value:
        raise BrokerNotFound(
            "DUETIME_KAFKA_LIBS is not set: run `export DUETIME_KAFKA_LIBS=$(./scripts/"
            "fetch-kafka.sh)` (scripts/test.sh does this)"
        )
    libs = Path(value)
    if not (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        raise BrokerNotFound(
            f"DUETIME_KAFKA_LIBS={value} does not hold kafka_2.13-{KAFKA_VERSION}.jar: "
            "run ./scripts/fetch-kafka.sh"
        )
    return libs


def _cluster_id() -> str:
    """A random id in Kafka's form (URL-safe base64, no padding; never starts with '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in a private event loop: in this thread, or in a worker
    thread when this thread already runs a loop (an async test)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(1, thread_name_prefix="kafka-helper") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class KafkaBroker(_Broker):
    """A single Kafka node (broker and KRaft controller in one JVM) on 127.0.0.1.

    Topics are created on first use with `partitions` partitions; every replication factor
    is 1; a new consumer group starts at once (no initial rebalance delay)."""

    name = "kafka"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        libs: Path | None = None,
        *,
        partitions: int = 1,
    ) -> None:
        super().__init__(data_dir, "kafka.log")
        self.libs = libs if libs is not None else kafka_libs()
        self.java = shutil.which("java")
        if self.java is None:
            raise BrokerNotFound("java not found on PATH (Kafka needs Java 17)")
        self._own_ports = port is None and controller_port is None
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.partitions = partitions
        self._started = False
        self.start_seconds: float | None = None  # how long the last start() took

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def _properties(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def _log_dir(self) -> Path:
        return self.data_dir / "data"

    def _java(self, *args: str, heap: str = "-Xmx512m") -> list[str]:
        assert self.java is not None
        return [
            self.java,
            heap,
            # a test broker: start fast (C1 only, one GC thread) over peak throughput
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            "-cp",
            f"{self.libs}/*",
            *args,
        ]

    def _write_properties(self) -> None:
        p, c = self.port, self.controller_port
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{c}",
            f"listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{p}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={self._log_dir}",
            f"num.partitions={self.partitions}",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",  # one coordinator partition: ready sooner
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._properties.write_text("\n".join(lines))

    def _format(self) -> None:
        """Format the storage once; a restart keeps it."""
        if (self._log_dir / "meta.properties").exists():
            return
        args = ["kafka.tools.StorageTool", "format", "-t", _cluster_id()]
        result = subprocess.run(
            self._java(*args, "-c", str(self._properties), heap="-Xmx256m"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {result.stdout}{result.stderr}")

    def start(self, timeout: float = 90.0) -> KafkaBroker:
        """Start and wait until a record round-trips through a consumer group (the partition
        leader and the group coordinator are both ready)."""
        began = time.monotonic()
        for attempt in range(3):
            self._write_properties()
            self._format()
            self._spawn(self._java("kafka.Kafka", str(self._properties)))
            try:
                self._probe(began + timeout)
            except RuntimeError:
                if self._started or not self._own_ports or attempt == 2:
                    raise
                if not _bind_failed(self):
                    raise
                # the ports were taken between the pick and the bind: start afresh
                shutil.rmtree(self._log_dir, ignore_errors=True)
                self.port, self.controller_port = free_port(), free_port()
                continue
            self._started = True
            self.start_seconds = time.monotonic() - began
            return self
        raise AssertionError("unreachable")

    def _probe(self, deadline: float) -> None:
        """Wait for the broker to log that it started, then produce a fresh record to the
        probe topic and consume it in a consumer group."""
        self._wait_ready(self._started_logged, deadline - time.monotonic())
        marker = json.dumps({"probe": uuid.uuid4().hex}).encode()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"kafka exited: {self.report()}")
            try:
                _run(lambda: self._round_trip(marker, deadline))
                return
            except (KafkaError, OSError, TimeoutError) as exc:
                last = exc
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"kafka not ready ({last!r}): {self.report()}")

    def _started_logged(self) -> bool:
        return "Kafka Server started" in self._since_spawn()

    async def _round_trip(self, marker: bytes, deadline: float) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", request_timeout_ms=5000
        )
        try:
            await producer.start()
            await asyncio.wait_for(producer.send_and_wait(_PROBE_TOPIC, marker), 10)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            _PROBE_TOPIC,
            bootstrap_servers=self.bootstrap,
            group_id="duetime-probe",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        try:
            await consumer.start()
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                if any(r.value == marker for rs in batches.values() for r in rs):
                    await consumer.commit()
                    return
            raise TimeoutError("probe record not consumed")
        finally:
            await consumer.stop()

    def restart(self, timeout: float = 90.0) -> KafkaBroker:
        """Stop (if running) and start again on the same ports with the same data."""
        self.stop()
        return self.start(timeout)

    def count(self, topic: str) -> int:
        """How many records `topic` holds (end minus beginning offsets over its partitions;
        0 for a topic that does not exist). Transaction markers would count too: fine for
        idempotent, non-transactional producers."""

        async def count() -> int:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            try:
                await consumer.start()
                parts = await self._partitions(topic)
                if not parts:
                    return 0
                begin = await consumer.beginning_offsets(parts)
                end = await consumer.end_offsets(parts)
                return sum(end[tp] - begin[tp] for tp in parts)
            finally:
                await consumer.stop()

        return _run(count)

    def read(self, topic: str, *, timeout: float, at_least: int = 0) -> list[dict[str, Any]]:
        """Every record in `topic`, in offset order (partition by partition), as
        `{"value": <value parsed as JSON, None for a tombstone>, "key": str | None,
        "headers": {name: str}, "partition", "offset", "timestamp" (ms)}`.

        Reads up to the end offsets seen once the topic holds `at_least` records (0: at
        once); raises TimeoutError if waiting and reading take longer than `timeout`."""

        async def read() -> list[dict[str, Any]]:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            try:
                await consumer.start()
                return await asyncio.wait_for(self._read(consumer, topic, at_least), timeout)
            finally:
                await consumer.stop()

        return _run(read)

    async def _read(
        self, consumer: AIOKafkaConsumer, topic: str, at_least: int
    ) -> list[dict[str, Any]]:
        while True:
            parts = await self._partitions(topic)
            begin = await consumer.beginning_offsets(parts) if parts else {}
            end = await consumer.end_offsets(parts) if parts else {}
            if sum(end[tp] - begin[tp] for tp in parts) >= at_least:
                break
            await asyncio.sleep(0.05)
        if not parts:
            return []
        consumer.assign(parts)
        records: dict[TopicPartition, list[dict[str, Any]]] = {tp: [] for tp in parts}
        for tp in parts:
            consumer.seek(tp, begin[tp])
        pending = {tp for tp in parts if end[tp] > begin[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, batch in batches.items():
                records[tp].extend(_record(r) for r in batch if r.offset < end[tp])
            for tp in list(pending):  # control records move the position without a record
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return [r for tp in parts for r in records[tp]]

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        """The partitions of `topic` ([] if it does not exist; asking does not create it)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await admin.start()
            topics = await admin.describe_topics()  # all of them: naming one may create it
        finally:
            await admin.close()
        numbers = [p["partition"] for t in topics if t["topic"] == topic for p in t["partitions"]]
        return [TopicPartition(topic, n) for n in sorted(numbers)]


def _record(r: Any) -> dict[str, Any]:
    try:
        value = None if r.value is None else json.loads(r.value)
    except ValueError as exc:
        raise ValueError(
            f"{r.topic}[{r.partition}]@{r.offset}: not JSON: {r.value[:200]!r}"
        ) from exc
    return {
        "value": value,
        "key": None if r.key is None else r.key.decode(errors="replace"),
        "headers": {name: raw.decode(errors="replace") for name, raw in r.headers},
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
    }
