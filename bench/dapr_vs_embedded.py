"""The embedded and Dapr backends side by side, in one run on one machine.

    .venv/bin/python -m bench.dapr_vs_embedded            # full counts, about 4 minutes
    .venv/bin/python -m bench.dapr_vs_embedded --quick    # smaller counts, about 1 minute

Embedded: `EmbeddedJobScheduler` over `SqlJobStore` on SQLite in a temporary directory.
Dapr: a real scheduler and daprd (`duetime.localdapr`, built by scripts/build-dapr.sh), a
`DaprJobScheduler` whose mirror is a `SqlJobStore` on SQLite, and an in-process app (uvicorn
with duetime's `trigger_router`) that daprd calls with `POST /job/{name}`. Everything of
duetime's runs in this process's event loop (uvloop, as under `duetime serve`), one backend
after the other; daprd and the scheduler are started only once the embedded run is over.

For each backend:
- scheduling rate: `schedule` awaited one job at a time (far-future jobs with a small
  payload), and `schedule_many` in batches: one batch of far-future jobs first (its rate sets
  how far ahead the later phases put their due times), then the N jobs of the trigger phase;
- trigger rate: those N one-shot jobs, due at the same instant → time from that instant to the
  first and to the last delivery, triggers/s, and how many were delivered exactly once;
- lateness (the handler's entry wall clock − the job's due time) at two rates, each job with
  its own absolute RFC3339 due time in ms, spread evenly over a few seconds; lost, duplicate
  and early counts.

To tell where the time goes it also prints, per phase, the CPU seconds of this process, daprd
and the scheduler (from /proc), and the mean time of the mirror's and daprd's calls. Each
phase ends once no such call is in flight, so the next one starts on an idle backend.

The run is bounded by `--budget` seconds (default 360): a phase that would start too close to
it is skipped, and waits end at it (what has not arrived by then counts as lost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvicorn
from fastapi import FastAPI

from duetime.api.errors import install_error_handlers
from duetime.api.triggers import trigger_router
from duetime.jobs import Job, Trigger
from duetime.jobs.dapr import DaprJobScheduler, DaprSidecar
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.port import JobScheduler
from duetime.jobs.sql_store import SqlJobStore
from duetime.localdapr import Daprd, Scheduler, binary, free_port

FAR = "720h"  # due in 30 days: scheduled, never fired during the run
RESERVE = 20.0  # seconds of the budget kept for stopping everything
_TICK = os.sysconf("SC_CLK_TCK")


def rfc3339_ms(epoch_ms: int) -> str:
    at = datetime.fromtimestamp(epoch_ms // 1000, UTC) + timedelta(milliseconds=epoch_ms % 1000)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK


class Recorder:
    """Records each trigger's name and the wall clock on the handler's entry (as
    `duetime.testing.RecordingHandler` does, without its lock), and tells when every job of
    the current phase has arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self._expected: set[str] = set()
        self._missing = 0
        self.complete = asyncio.Event()

    def expect(self, names: Iterable[str]) -> None:
        self._expected = set(names)
        self._missing = len(self._expected)
        self.complete = asyncio.Event()

    async def __call__(self, trigger: Trigger) -> None:
        now = time.time()
        seen = self.arrivals[trigger.name]
        seen.append(now)
        if len(seen) == 1 and trigger.name in self._expected:
            self._missing -= 1
            if self._missing == 0:
                self.complete.set()


class Timings:
    """Count and total wall time of awaited calls, by label (overlapping calls add up)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.total: dict[str, float] = defaultdict(float)
        self.inflight = 0

    def wrap(self, obj: Any, method: str, label: str) -> None:
        original: Callable[..., Awaitable[Any]] = getattr(obj, method)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            self.inflight += 1
            try:
                return await original(*args, **kwargs)
            finally:
                self.inflight -= 1
                self.calls[label] += 1
                self.total[label] += time.perf_counter() - began

        setattr(obj, method, timed)

    def snapshot(self) -> dict[str, tuple[int, float]]:
        return {k: (self.calls[k], self.total[k]) for k in self.calls}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic() - RESERVE


@dataclass
class Cost:
    wall: float
    cpu: dict[str, float]
    calls: dict[str, tuple[int, float]]


@dataclass
class Backend:
    name: str
    scheduler: JobScheduler
    recorder: Recorder
    timings: Timings
    pids: dict[str, int]
    results: dict[str, str] = field(default_factory=dict)
    costs: dict[str, Cost] = field(default_factory=dict)
    batch_rate: float = 5000.0  # jobs/s, replaced by the measured rate

    def cpu(self) -> dict[str, float]:
        return {label: cpu_seconds(pid) for label, pid in self.pids.items()}


@dataclass
class Tally:
    jobs: int
    once: int = 0
    lost: int = 0
    duplicates: int = 0
    early: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    first: float = float("inf")
    last: float = float("-inf")

    def counts(self) -> str:
        return (
            f"{self.once:,} / {self.jobs:,} once · lost {self.lost:,} · "
            f"dup {self.duplicates:,} · early {self.early:,}"
        )


def tally(recorder: Recorder, due: dict[str, float]) -> Tally:
    result = Tally(len(due))
    for name, at in due.items():
        got = recorder.arrivals.get(name)
        if not got:
            result.lost += 1
            continue
        if len(got) == 1:
            result.once += 1
        result.duplicates += len(got) - 1
        result.early += got[0] < at
        result.lateness_ms.append((got[0] - at) * 1000)
        result.first = min(result.first, got[0])
        result.last = max(result.last, got[0])
    return result


async def schedule_batched(scheduler: JobScheduler, jobs: Sequence[Job], batch: int) -> float:
    began = time.perf_counter()
    for i in range(0, len(jobs), batch):
        await scheduler.schedule_many(jobs[i : i + batch])
    return len(jobs) / (time.perf_counter() - began)


async def wait_delivered(b: Backend, last_due: float, grace: float, budget: Budget) -> None:
    """Until every expected job arrived, at most `grace` s after the last due time; then a
    second more, to catch duplicates."""
    timeout = min(last_due + grace - time.time(), budget.left())
    try:
        await asyncio.wait_for(b.recorder.complete.wait(), max(timeout, 0.1))
    except TimeoutError:
        pass
    await asyncio.sleep(max(0.0, min(1.0, budget.left())))


async def phase_sequential(b: Backend, n: int, batch: int, budget: Budget) -> None:
    jobs = [Job(f"one-{i:06d}", due_time=FAR, data={"i": i}) for i in range(n)]
    began = time.perf_counter()
    for job in jobs:
        await b.scheduler.schedule(job)
        if budget.left() < 0:
            b.results["seq"] = "stopped (time budget)"
            return
    b.results["seq"] = f"{n / (time.perf_counter() - began):,.0f} jobs/s"


async def phase_pilot(b: Backend, n: int, batch: int, budget: Budget) -> None:
    """One batch of far-future jobs: the rate that sets how far ahead the later phases put
    their due times."""
    jobs = [Job(f"pilot-{i:06d}", due_time=FAR, data={"i": i}) for i in range(n)]
    b.batch_rate = await schedule_batched(b.scheduler, jobs, batch)
    b.results["pilot"] = f"{b.batch_rate:,.0f} jobs/s"


def lead_time(b: Backend, n: int) -> float:
    """Seconds ahead to set the first due time so that all `n` jobs are scheduled before."""
    return max(3.0, 1.25 * n / b.batch_rate + 2.0)


async def phase_burst(b: Backend, n: int, batch: int, budget: Budget) -> None:
    due_ms = int((time.time() + lead_time(b, n)) * 1000)
    due = due_ms / 1000
    text = rfc3339_ms(due_ms)
    jobs = [Job(f"burst-{i:06d}", due_time=text, data={"i": i}) for i in range(n)]
    b.recorder.expect(j.name for j in jobs)
    rate = await schedule_batched(b.scheduler, jobs, batch)
    overrun = time.time() - due
    await wait_delivered(b, due, 60.0, budget)
    t = tally(b.recorder, dict.fromkeys((j.name for j in jobs), due))
    note = f" (scheduling overran the due time by {overrun:.1f} s)" if overrun > 0 else ""
    b.results["batch"] = f"{rate:,.0f} jobs/s{note}"
    if t.lateness_ms:
        b.results["burst_first"] = f"{t.first - due:.2f} s"
        b.results["burst_last"] = f"{t.last - due:.2f} s"
        b.results["burst_rate"] = f"{(n - t.lost) / max(t.last - due, 1e-3):,.0f} triggers/s"
    b.results["burst_once"] = t.counts()


async def phase_lateness(b: Backend, rate: int, seconds: float, batch: int, budget: Budget) -> None:
    n = int(rate * seconds)
    start_ms = int((time.time() + lead_time(b, n)) * 1000)
    due_ms = [start_ms + i * 1000 // rate for i in range(n)]
    jobs = [Job(f"late{rate}-{i:06d}", due_time=rfc3339_ms(d)) for i, d in enumerate(due_ms)]
    b.recorder.expect(j.name for j in jobs)
    await schedule_batched(b.scheduler, jobs, batch)
    overrun = time.time() - start_ms / 1000
    await wait_delivered(b, due_ms[-1] / 1000, 30.0, budget)
    t = tally(b.recorder, {j.name: d / 1000 for j, d in zip(jobs, due_ms, strict=True)})
    if t.lateness_ms:
        v = t.lateness_ms
        b.results[f"late{rate}"] = f"{ms(pct(v, 0.5))} · {ms(pct(v, 0.99))} · {ms(max(v))}"
    note = f" (scheduling overran the first due time by {overrun:.1f} s)" if overrun > 0 else ""
    b.results[f"late{rate}_count"] = t.counts() + note


async def run_phases(b: Backend, args: argparse.Namespace, budget: Budget) -> None:
    batch = args.batch
    phases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("seq", lambda: phase_sequential(b, args.sequential, batch, budget)),
        ("pilot", lambda: phase_pilot(b, batch, batch, budget)),
    ]
    for rate in args.rates:
        phases.append(
            (f"late{rate}", lambda r=rate: phase_lateness(b, r, args.seconds, batch, budget))
        )
    # last: the longest on Dapr; with the budget short it is the one cut
    phases.append(("burst", lambda: phase_burst(b, args.burst, batch, budget)))
    for key, phase in phases:
        if budget.left() < 10:
            b.results[key] = "skipped (time budget)"
            continue
        cpu_before, calls_before, began = b.cpu(), b.timings.snapshot(), time.perf_counter()
        await phase()
        await quiesce(b, budget)
        wall = time.perf_counter() - began
        cpu = {k: v - cpu_before[k] for k, v in b.cpu().items()}
        calls = {
            k: (c - calls_before.get(k, (0, 0.0))[0], s - calls_before.get(k, (0, 0.0))[1])
            for k, (c, s) in b.timings.snapshot().items()
        }
        b.costs[key] = Cost(wall, cpu, {k: v for k, v in calls.items() if v[0]})
        print(f"  {b.name} {key}: done in {wall:.1f} s", flush=True)


async def quiesce(b: Backend, budget: Budget) -> None:
    """Until no timed call (a trigger still writing its outcome, say) is in flight, so that
    each phase starts on an idle backend and is charged with its own work."""
    for _ in range(int(max(0.0, min(30.0, budget.left())) * 20)):
        if b.timings.inflight == 0:
            return
        await asyncio.sleep(0.05)


async def warm_up(b: Backend, timeout: float) -> None:
    """One job due in a second, delivered end to end: the trigger path works."""
    b.recorder.expect(["warmup"])
    await b.scheduler.schedule(Job("warmup", due_time="1s"))
    await asyncio.wait_for(b.recorder.complete.wait(), timeout)


async def run_embedded(args: argparse.Namespace, tmp: Path, budget: Budget) -> Backend:
    store = SqlJobStore(f"sqlite:///{tmp / 'embedded.db'}")
    timings = Timings()
    for method in ("insert", "apply"):
        timings.wrap(store, method, f"mirror {method}")
    scheduler = EmbeddedJobScheduler(store)
    b = Backend("embedded", scheduler, Recorder(), timings, {"duetime": os.getpid()})
    scheduler.add_handler("", b.recorder)
    await scheduler.start()
    try:
        await warm_up(b, 10)
        await run_phases(b, args, budget)
    finally:
        await scheduler.stop()
    return b


async def run_dapr(
    args: argparse.Namespace, tmp: Path, budget: Budget, procs: list[Any]
) -> Backend:
    app_port = free_port()
    scheduler_proc = Scheduler(tmp / "scheduler")
    daprd = Daprd(
        tmp / "daprd",
        app_id="duetime-bench",
        app_port=app_port,
        scheduler_address=scheduler_proc.address,
    )
    procs += [daprd, scheduler_proc]
    store = SqlJobStore(f"sqlite:///{tmp / 'mirror.db'}")
    sidecar = DaprSidecar(daprd.http_url)
    timings = Timings()
    for method in ("insert", "get", "apply"):
        timings.wrap(store, method, f"mirror {method}")
    timings.wrap(sidecar, "schedule", "daprd POST job")
    dapr = DaprJobScheduler(store, sidecar)
    timings.wrap(dapr, "receive", "receive (trigger)")
    b = Backend("Dapr", dapr, Recorder(), timings, {"duetime": os.getpid()})
    dapr.add_handler("", b.recorder)
    await dapr.start()

    app = FastAPI()
    app.include_router(trigger_router())
    install_error_handlers(app)
    app.state.trigger_sink = dapr
    app.state.settings = SimpleNamespace(api_token=None, app_api_token=None)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=app_port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise RuntimeError("the trigger app did not start")
        await asyncio.to_thread(scheduler_proc.start)
        await asyncio.to_thread(daprd.start, wait_for_app=True)
        assert scheduler_proc.pid is not None and daprd.pid is not None
        b.pids.update(daprd=daprd.pid, scheduler=scheduler_proc.pid)
        await warm_up(b, 30)
        await run_phases(b, args, budget)
    finally:
        await asyncio.to_thread(daprd.stop)
        await asyncio.to_thread(scheduler_proc.stop)
        server.should_exit = True
        await serving
        await dapr.stop()
    return b


ROWS = [
    ("seq", "schedule, one at a time ({sequential:,} jobs)"),
    ("pilot", "schedule_many, one batch of {batch:,} jobs"),
    ("batch", "schedule_many, batches of {batch:,} ({burst:,} jobs, those below)"),
    ("burst_first", "{burst:,} jobs due at one instant: due → first delivered"),
    ("burst_last", "… due → last delivered"),
    ("burst_rate", "… triggers/s (delivered ÷ due → last)"),
    ("burst_once", "… delivered exactly once"),
]


def table(backends: list[Backend], args: argparse.Namespace) -> str:
    rows = list(ROWS)
    for rate in args.rates:
        load = f"{rate:,}/s for {args.seconds:g} s"
        rows.append((f"late{rate}", f"lateness p50 · p99 · max, {load}"))
        rows.append((f"late{rate}_count", f"… delivered, {load}"))
    names = vars(args)
    lines = [
        "| measure | " + " | ".join(b.name for b in backends) + " |",
        "| --- |" + " --- |" * len(backends),
    ]
    for key, label in rows:
        base = key.split("_")[0]
        cells = [b.results.get(key, b.results.get(base, "—")) for b in backends]
        lines.append(f"| {label.format(**names)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cost_table(backends: list[Backend]) -> str:
    lines = [
        "| backend | phase | wall | CPU duetime · daprd · scheduler | calls: count × mean |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in backends:
        for key, cost in b.costs.items():
            cpu = " · ".join(f"{cost.cpu.get(p, float('nan')):.1f} s" for p in ("duetime",))
            if "daprd" in cost.cpu:
                cpu += f" · {cost.cpu['daprd']:.1f} s · {cost.cpu['scheduler']:.1f} s"
            calls = "; ".join(
                f"{label} {count:,} × {ms(total / count * 1000)}"
                for label, (count, total) in sorted(cost.calls.items())
            )
            lines.append(f"| {b.name} | {key} | {cost.wall:.1f} s | {cpu} | {calls} |")
    return "\n".join(lines)


async def run(args: argparse.Namespace, tmp: Path, procs: list[Any]) -> None:
    budget = Budget(args.budget)
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    backends = []
    if "embedded" in args.backends:
        backends.append(await run_embedded(args, tmp, budget))
    if "dapr" in args.backends:
        print(f"daprd: {binary('daprd')}", flush=True)
        backends.append(await run_dapr(args, tmp, budget, procs))
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(table(backends, args))
    print()
    print(cost_table(backends))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--sequential", type=int, help="jobs scheduled one at a time")
    parser.add_argument(
        "--burst", type=int, help="jobs scheduled with schedule_many, all due at one instant"
    )
    parser.add_argument("--seconds", type=float, help="length of each lateness run")
    parser.add_argument("--rates", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=360.0, help="seconds for the whole run")
    parser.add_argument("--backends", nargs="+", default=["embedded", "dapr"])
    args = parser.parse_args()
    defaults = (300, 2000, 2.0) if args.quick else (2000, 10_000, 5.0)
    for key, value in zip(("sequential", "burst", "seconds"), defaults, strict=True):
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    procs: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(run(args, Path(tmp), procs))
        finally:
            for proc in procs:
                proc.stop()


if __name__ == "__main__":
    main()
