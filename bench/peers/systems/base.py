"""The common interface of every system under test, and the process handling they share.

A `System` is one scheduler in one configuration, on a fresh store (`Env`). The harness
calls `start()`, `schedule(jobs, batch=...)`, `kill()` (SIGKILL to every process of its
workers), `restart()` (the same store) and `stop()`. Where the scheduler is a library
embedded in the process that schedules (duetime, APScheduler), that process is an *agent*:
it runs the scheduler and takes `schedule` commands as JSON lines on its stdin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bench.peers.servers import PostgresServer, RedisServer

Jobs = list[tuple[str, float]]  # (job id, due time in Unix seconds)
_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Env:
    """What one system gets for one turn: a fresh directory and sink, the servers."""

    tmp: Path
    sink: Path
    pg: PostgresServer
    redis: RedisServer
    redis_db: int


class System:
    name: ClassVar[str]
    label: ClassVar[str]
    store: ClassVar[str]  # "memory", "SQLite", "PostgreSQL", "Redis"
    batch: ClassVar[bool] = False  # has a batch scheduling call
    agent: ClassVar[bool] = False  # schedules through its worker process

    def __init__(self, env: Env) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = (env.tmp / f"{self.name}.log").open("ab")
        self._redis_baseline = self._redis_memory() if self.store == "Redis" else 0

    # -- for subclasses ------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """What the worker process needs (JSON)."""
        return {}

    def setup(self) -> None:
        """Prepare the store (once per turn, before the first start)."""

    def cleanup(self) -> None:
        """Drop the store."""

    def _schedule(self, jobs: Jobs, batch: bool) -> None:
        raise NotImplementedError

    def settle(self, timeout: float) -> None:
        """Wait until the workers have taken what was scheduled (Celery: its queue drained
        into the worker's memory); no-op elsewhere."""

    def store_bytes(self) -> int | None:
        """What the store holds for this system (Redis: its used memory over what it used
        at the turn's start; PostgreSQL: the database's size; SQLite: the file's)."""
        if self.store == "Redis":
            return self._redis_memory() - self._redis_baseline
        database = getattr(self, "database", None)
        if database is not None:
            return int(self.env.pg.query(f"SELECT pg_database_size('{database}')"))
        return None

    def _redis_memory(self) -> int:
        client = self.env.redis.client(db=self.env.redis_db)
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()

    # -- the interface -------------------------------------------------------------------
    def start(self) -> None:
        cfg = {**self.config(), "sink": str(self.env.sink)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.peers.worker", self.name, json.dumps(cfg)],
            cwd=_ROOT,
            stdin=subprocess.PIPE if self.agent else subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.agent else subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,  # its own process group: kill -9 reaches its children
        )

    def schedule(self, jobs: Jobs, *, batch: bool) -> float:
        """Schedule `jobs` (one call each, or in batches of 1,000): the seconds it took."""
        began = time.perf_counter()
        if self.agent:
            self._call({"op": "schedule", "jobs": jobs, "batch": batch})
        else:
            self._schedule(jobs, batch)
        return time.perf_counter() - began

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self._reap(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.agent and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the agent stops its scheduler at end of input
        else:
            self._signal(signal.SIGTERM)
        if not self._reap(30):
            self.kill()

    def restart(self) -> None:
        self.start()

    def close(self) -> None:
        self.stop()
        self.cleanup()
        self._log.close()

    def pids(self) -> list[int]:
        """Every live process of the workers' process group."""
        if self.proc is None:
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                found.append(int(stat.parent.name))
        return found

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def log_tail(self) -> str:
        self._log.flush()
        return (self.env.tmp / f"{self.name}.log").read_text(errors="replace")[-3000:]

    # -- helpers -------------------------------------------------------------------------
    def _call(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} agent exited: {self.log_tail()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}")
        return answer

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, timeout: float) -> bool:
        """Wait for the group leader and then the rest of the group to be gone."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.pids()


def redis_url(env: Env) -> str:
    return f"redis://127.0.0.1:{env.redis.port}/{env.redis_db}"
