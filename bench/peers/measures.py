"""The measures, each for one system on its own fresh store and sink (one *turn*).

Every job id is `<measure>-<system>-<round>-<n>`, unique over the run. Lateness is the
handler's wall clock at entry − the job's due time, from the sink, for every system alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.peers.sink import Outcome, Reader
from bench.peers.systems.base import System

FAR = 365 * 24 * 3600.0  # pending jobs are due a year ahead


@dataclass(frozen=True)
class Sizes:
    single: int  # jobs scheduled one call each
    batched: int  # jobs scheduled in batches (where the system has a batch call)
    rates: tuple[int, ...]  # jobs/s for the lateness measures
    seconds: float  # how long each lateness load lasts
    burst: int  # jobs due at one instant
    kill: int  # jobs pending at the kill -9, spread at 1,000/s
    ready: int  # jobs pending at the restart
    memory: int  # jobs pending for the memory figure
    grace: float  # how long past the last due time a job may still start
    fill_cap: float  # give up filling the pending store after this many seconds
    lead: float = 1.5  # seconds between the end of scheduling and the first due time
    linger: float = 0.5  # seconds to wait after the last start, for duplicates that follow


SMOKE = Sizes(50, 50, (100,), 0.5, 0, 0, 0, 0, 20, 30, lead=0.5, linger=0.2)
QUICK = Sizes(200, 2000, (100, 1000), 2, 2000, 3000, 5000, 5000, 10, 15)
FULL = Sizes(2000, 20_000, (100, 1000), 10, 10_000, 10_000, 100_000, 1_000_000, 60, 300)


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:07d}" for i in range(n)]


class Turn:
    """One system's turn at the fast measures (add rate, lateness, burst): one worker start."""

    def __init__(self, system: System, reader: Reader, tag: str, sizes: Sizes) -> None:
        self.sizes = sizes
        self.system = system
        self.reader = reader
        self.tag = tag
        self.rate = 500.0  # jobs/s the system schedules at, learnt as it goes (lead times)

    def warm_up(self, timeout: float = 60) -> float:
        """Schedule one job due now and wait for it: seconds until it started."""
        prefix = f"warm-{self.tag}-{time.monotonic_ns()}"
        began = time.time()
        self.system.schedule([(f"{prefix}-0", time.time())], batch=False)
        if not self.reader.wait(prefix, 1, timeout):
            raise RuntimeError(f"{self.system.name}: no job ran in {timeout} s:\n"
                               f"{self.system.log_tail()}")  # fmt: skip
        return time.time() - began

    def add_rate(self, single: int, batched: int) -> dict[str, Any]:
        now = time.time()
        result: dict[str, Any] = {}
        jobs = list(zip(_ids(f"add1-{self.tag}", single),
                        (now + FAR + i * 1e-3 for i in range(single)), strict=True))  # fmt: skip
        seconds = self.system.schedule(jobs, batch=False)
        result["single_per_s"] = single / seconds
        self.rate = single / seconds
        if self.system.batch and batched:
            dues = (now + FAR + i * 1e-3 for i in range(batched))
            jobs = list(zip(_ids(f"addb-{self.tag}", batched), dues, strict=True))
            seconds = self.system.schedule(jobs, batch=True)
            result["batch_per_s"] = batched / seconds
            self.rate = batched / seconds
        return result

    def _lead(self, n: int) -> float:
        return self.sizes.lead + 1.2 * n / self.rate

    def lateness(self, rate: int, seconds: float, grace: float) -> Outcome:
        n = int(rate * seconds)
        prefix = f"lat{rate}-{self.tag}"
        start = time.time() + self._lead(n)
        jobs = list(zip(_ids(prefix, n), (start + i / rate for i in range(n)), strict=True))
        self.system.schedule(jobs, batch=self.system.batch)
        self.reader.wait_quiet(prefix, n, max(0.0, jobs[-1][1] - time.time()) + grace)
        time.sleep(self.sizes.linger)  # a duplicate that follows closely is counted too
        return self.reader.outcome(prefix, [i for i, _ in jobs])

    def burst(self, n: int, grace: float) -> tuple[Outcome, float]:
        prefix = f"burst-{self.tag}"
        due = time.time() + self._lead(n)
        jobs = [(i, due) for i in _ids(prefix, n)]
        self.system.schedule(jobs, batch=self.system.batch)
        if time.time() > due:
            print(f"  note: {self.system.name} scheduled the burst {time.time() - due:.1f} s "
                  "after its due time")  # fmt: skip
        self.reader.wait_quiet(prefix, n, max(0.0, due - time.time()) + grace)
        time.sleep(self.sizes.linger)
        return self.reader.outcome(prefix, [i for i, _ in jobs]), due


def kill_restart(system: System, reader: Reader, tag: str, n: int, grace: float,
                 rate: float) -> dict[str, Any]:  # fmt: skip
    """n jobs due at 1,000/s; kill -9 a third of the way through their due times (the same
    moment for every system), restart at once; wait until the last is due + grace; count
    what never started and what started twice."""
    prefix = f"kill-{tag}"
    start = time.time() + 1.5 + 1.2 * n / rate
    jobs = list(zip(_ids(prefix, n), (start + i / 1000 for i in range(n)), strict=True))
    system.schedule(jobs, batch=system.batch)
    time.sleep(max(0.0, start + n / 3000 - time.time()))
    killed_at = time.time()
    system.kill()
    reader.poll()
    before = reader.seen(prefix)
    system.restart()
    reader.wait_quiet(prefix, n, max(0.0, jobs[-1][1] - time.time()) + grace)
    time.sleep(1.0)
    outcome = reader.outcome(prefix, [i for i, _ in jobs])
    due_before = sum(1 for _, d in jobs if d <= killed_at)
    return {"outcome": outcome, "started_before_kill": before, "due_before_kill": due_before}


def pending(system: System, reader: Reader, tag: str, ready_n: int, memory_n: int,
            fill_cap: float) -> dict[str, Any]:  # fmt: skip
    """Fill the store with far-future jobs (batched where possible), measure the memory
    with `memory_n` pending and the restart-to-ready time with `ready_n` pending: a clean
    stop, a fresh start, and a job due now scheduled at once: start → that job started."""
    result: dict[str, Any] = {}
    now = time.time()
    filled = 0
    began = time.monotonic()
    capped = False
    for target, key in sorted([(ready_n, "ready"), (memory_n, "memory")]):
        chunk = 5000
        while filled < target:
            if time.monotonic() - began > fill_cap:
                capped = True
                break
            count = min(chunk, target - filled)
            jobs = [(f"pend-{tag}-{filled + i:08d}", now + FAR + (filled + i) * 1e-4)
                    for i in range(count)]  # fmt: skip
            system.schedule(jobs, batch=system.batch)
            filled += count
        result["fill_per_s"] = filled / (time.monotonic() - began)
        result[f"{key}_pending"] = filled
        result[f"{key}_capped"] = capped
        system.settle(timeout=120)
        if key == "memory":
            time.sleep(1)
            result["rss_bytes"] = system.rss_bytes()
            result["store_bytes"] = system.store_bytes()
        else:
            system.stop()
            spawned = time.time()
            system.start()
            prefix = f"ready-{tag}"
            system.schedule([(f"{prefix}-0", time.time())], batch=False)
            ok = reader.wait(prefix, 1, 300)
            reader.poll()
            started = reader.starts.get(f"{prefix}-0", [(0.0, float("nan"))])[0][1]
            result["ready_s"] = started - spawned if ok else float("inf")
    return result
