"""The one record every handler makes: job id, due time and start time, one line each.

A handler calls `record(job_id, due)` as its first act. Each process appends to a file of
its own in the sink directory with `os.write` on an `O_APPEND` descriptor: the kernel has the
line once the call returns, so a record survives a `kill -9` of its process.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_dir: Path | None = None
_fd: int | None = None
_pid = 0


def use(directory: str | Path) -> None:
    """Record to files in `directory` from now on (in this process and its forks)."""
    global _dir, _fd
    _dir = Path(directory)
    _fd = None


def record(job_id: str, due: float) -> None:
    """Note that `job_id`, due at `due` (Unix seconds), starts now."""
    global _fd, _pid
    started = time.time()
    if _fd is None or _pid != os.getpid():
        assert _dir is not None, "sink.use(directory) first"
        _pid = os.getpid()
        _fd = os.open(_dir / f"{_pid}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_fd, f"{job_id} {due:.6f} {started:.6f}\n".encode())


@dataclass
class Reader:
    """Reads what every process recorded, incrementally."""

    directory: Path
    starts: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _offsets: dict[Path, int] = field(default_factory=dict)

    def poll(self) -> None:
        for path in sorted(self.directory.glob("*.log")):
            offset = self._offsets.get(path, 0)
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a line being written is read next time
            self._offsets[path] = offset + end
            for line in chunk[:end].decode().splitlines():
                job_id, due, started = line.split()
                self.starts.setdefault(job_id, []).append((float(due), float(started)))

    def seen(self, prefix: str) -> int:
        """How many distinct jobs whose id starts with `prefix` have started."""
        return sum(1 for k in self.starts if k.startswith(prefix))

    def wait(self, prefix: str, count: int, timeout: float) -> bool:
        """Wait until `count` distinct jobs of `prefix` have started; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if self.seen(prefix) >= count:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def wait_quiet(self, prefix: str, count: int, timeout: float, quiet: float = 3.0,
                   cap: float = 90.0) -> bool:  # fmt: skip
        """`wait`, then go on waiting while jobs still start (no start for `quiet` seconds
        ends it; `cap` seconds past `timeout` at most): a slow system's backlog is late,
        not missing."""
        if self.wait(prefix, count, timeout):
            return True
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            seen = self.seen(prefix)
            if self.wait(prefix, count, quiet):
                return True
            if self.seen(prefix) == seen:
                return False
        return False

    def outcome(self, prefix: str, expected: list[str]) -> Outcome:
        """Lateness of each job's first start, and what ran twice, never, or early."""
        self.poll()
        runs = Counter({k: len(v) for k, v in self.starts.items() if k.startswith(prefix)})
        lateness = []
        first_starts = []
        early = 0
        for job_id in expected:
            if job_id in self.starts:
                due, started = min(self.starts[job_id], key=lambda r: r[1])
                lateness.append(started - due)
                first_starts.append(started)
                early += started < due
        return Outcome(
            expected=len(expected),
            ran=len(lateness),
            missing=len(expected) - len(lateness),
            duplicates=sum(n - 1 for n in runs.values() if n > 1),
            early=early,
            lateness=lateness,
            first_starts=first_starts,
        )


@dataclass
class Outcome:
    expected: int
    ran: int
    missing: int
    duplicates: int  # starts beyond the first, over all jobs
    early: int
    lateness: list[float]  # seconds, first start − due, for the jobs that ran
    first_starts: list[float]  # Unix seconds

    def pct(self, q: float) -> float:
        if not self.lateness:
            return float("nan")
        ordered = sorted(self.lateness)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
