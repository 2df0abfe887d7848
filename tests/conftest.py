"""Shared fixtures: a real PostgreSQL server for the session, fresh databases per test."""

from __future__ import annotations

import fcntl
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from duetime.localdapr import free_port, use_port_band
from tests.brokers import KafkaBroker, RedisServer
from tests.smtp import SmtpServer

# Ports: every harness takes its ports from `free_port`. Under pytest-xdist each worker hands
# them out from a band of its own (`use_port_band`), so two workers never pick the same one.
_BAND_SIZE = 2000
_BANDS_FROM = 10000
_band_claim: IO[str] | None = None


def _claim_port_band() -> None:
    """Claim the first band of `_BAND_SIZE` ports below the kernel's ephemeral range that
    no other process holds, by a lock on a file in the temp dir held as long as this worker
    lives: workers of another test run at the same time get other bands too."""
    global _band_claim
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return  # not Linux: the kernel picks, as in a serial run
    for first in range(_BANDS_FROM, ephemeral - _BAND_SIZE + 1, _BAND_SIZE):
        claim = open(Path(tempfile.gettempdir()) / f"duetime-ports-{first}.lock", "w")
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claim.close()
            continue
        _band_claim = claim
        use_port_band(first, first + _BAND_SIZE - 1)
        return
    raise RuntimeError(f"every port band from {_BANDS_FROM} up to {ephemeral} is taken")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _claim_port_band()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"PostgreSQL's {name} not found: run ./scripts/test.sh, which installs it"
        )
    return path


class _PostgresServer:
    """A throw-away cluster on 127.0.0.1; run as the `postgres` user when we are root."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="duetime-pg-"))
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        data = self.root / "data"
        self._run(_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str) -> None:
        subprocess.run(
            [
                _pg_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-q",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_PostgresServer]:
    server = _PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: _PostgresServer) -> Iterator[str]:
    """A new, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.psql(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    postgres_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for one test."""
    server = SmtpServer().start()
    yield server
    server.stop()


# Real message brokers (tests/brokers.py): one of each for the session, and factories for the
# tests that stop, kill or restart theirs.


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis server on 127.0.0.1 for the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real single-node Kafka broker on 127.0.0.1 for the session (needs
    DUETIME_KAFKA_LIBS, which scripts/test.sh sets; without it the tests fail)."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """`make_redis(**options)` starts a Redis server of the test's own (options go to
    `RedisServer`); every one it started is stopped after the test."""
    started: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(started)}", **options)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def make_kafka(tmp_path: Path) -> Iterator[Callable[..., KafkaBroker]]:
    """`make_kafka(**options)` starts a Kafka broker of the test's own (options go to
    `KafkaBroker`, e.g. `partitions=3`); every one it started is stopped after the test."""
    started: list[KafkaBroker] = []

    def make(**options: Any) -> KafkaBroker:
        broker = KafkaBroker(tmp_path / f"kafka-{len(started)}", **options)
        started.append(broker)
        return broker.start()

    yield make
    for broker in started:
        broker.stop()
