"""The real servers the peers need, started here on 127.0.0.1 on free ports in temp dirs.

Redis is `tests.brokers.RedisServer` (Debian's redis-server, append-only file fsynced on
every write). PostgreSQL is started the way tests/conftest.py starts it, except that it
keeps its defaults for durability (`fsync=on`, `synchronous_commit=on`): a benchmark of
durable stores should pay for durability on every one of them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.brokers import RedisServer

from duetime.localdapr import free_port

__all__ = ["PostgresServer", "RedisServer", "pg_version", "redis_version"]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} not found: run ./scripts/test.sh")
    return path


def pg_version() -> str:
    out = subprocess.run([_pg_bin("postgres"), "--version"], capture_output=True, text=True)
    return out.stdout.split()[2]


def redis_version() -> str:
    out = subprocess.run(["/usr/bin/redis-server", "--version"], capture_output=True, text=True)
    return next((w[2:] for w in out.stdout.split() if w.startswith("v=")), "?")


class PostgresServer:
    """A throw-away cluster on 127.0.0.1; run as the `postgres` user when we are root."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="duetime-bench-pg-"))
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        data = self.root / "data"
        self._run(_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        self._run(
            _pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.root / "log"),
            "-w", "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str) -> None:
        subprocess.run(
            [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
             "-c", sql],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def query(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(
            [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-At",
             "-d", database, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return out.stdout.strip()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"b_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
