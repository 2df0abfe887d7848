"""Reminders end to end through each broker, side by side with the embedded path, in one run.

    .venv/bin/python -m bench.pubsub_e2e                 # 1,000 reminders per path
    .venv/bin/python -m bench.pubsub_e2e --quick         # 200 reminders per path
    .venv/bin/python -m bench.pubsub_e2e --count 1000 --budget 600 --paths embedded redis

Needs the real binaries the pub/sub tests use (`DUETIME_DAPR_BIN_DIR`, `DUETIME_HELM_BIN`,
`DUETIME_KAFKA_LIBS`, Debian's redis-server and Java: `./scripts/test.sh` sets them up).

Three paths, one after the other, each on fresh processes and a fresh SQLite database:

- **embedded**: one `duetime serve` (embedded scheduler; the fire writes the deliveries in
  its transaction and the in-process worker sends the webhook);
- **Dapr + Redis** and **Dapr + Kafka**: `tests.e2e.pubsub_stack.PubSubStack` (a real Dapr
  Scheduler, the API as `duetime serve` with `DUETIME_ROLE=api` and `DUETIME_SCHEDULER=dapr`
  and its daprd, `duetime worker` and its daprd, the chart's pub/sub Component) over a real
  `RedisServer` or `KafkaBroker` (`tests/brokers.py`).

For each: one user whose webhook channel points at a receiver; a warm-up reminder sent end
to end; a pilot batch of far-future tasks whose creation rate (the HTTP batch plus, on Dapr,
the scheduling outbox drained into daprd) sets the lead time; then `--count` tasks in one
`POST /api/tasks/batch`, due evenly over one second starting after that lead. The receiver
is a separate process (a bare ASGI app under uvicorn with uvloop and httptools) that records
each webhook's wall clock once its body is read.

Reported per path: received once, lost, duplicates (by notification id); rate = received ÷
(last received − first due); p50/p95/p99/max of received − due (`data.scheduled_for`); and
where the time goes, each hop's p50 and p99 from the timestamps on the way: due → fired
(`data.fired_at`, the scheduler and trigger path), fired → at the broker (the Redis stream
entry's id, the Kafka record's timestamp), → first attempt started
(`delivery_attempts.started_us`: on Dapr the worker's sidecar, its fan-out and the delivery
worker's claim; embedded the claim alone, the deliveries being written in the fire's
transaction), → received (the HTTP POST). A delivery row's `created_us` is its reminder's
fired time, not when the worker wrote it, so that hop cannot be split further from rows.
Rates per stage (how many reached it ÷ (the last to reach it − first due)) show which hop
caps the throughput; the `reminders` topic is read back to count what went through it (the
worker's `reminder.delivered` events share it). And the CPU seconds of each process (utime +
stime from /proc) over the creation window and over the firing window (first due → the last
webhook received), with what the rest of the machine used meanwhile (/proc/stat), since a
shared machine's other work takes the same two cores.

The run is bounded by `--budget` seconds (default 600): a path that would start too close to
it is skipped, and waits end at it (what has not arrived by then counts as lost).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from tests.brokers import KafkaBroker, RedisServer
from tests.conftest import free_port
from tests.e2e.conftest import Server
from tests.e2e.pubsub_stack import PubSubStack
from tests.e2e.test_tasks_e2e import SECRET, User, iso

from bench.dapr_vs_embedded import cpu_seconds, ms, pct

PATHS = ("embedded", "redis", "kafka")
TITLES = {"embedded": "embedded", "redis": "Dapr + Redis", "kafka": "Dapr + Kafka"}
NEEDS = {"embedded": 30.0, "redis": 60.0, "kafka": 120.0}  # seconds a path needs, at least
RESERVE = 20.0  # seconds of the budget kept for stopping everything
GRACE = 120.0  # seconds after the last due time to wait for the last webhook
SETTLE = 2.0  # seconds after the last one, to catch duplicates
FAR = timedelta(days=30)

RECEIVER = """
import json, time

hooks = []


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    at = time.time()
    path, out = scope["path"], b""
    if scope["method"] == "POST" and path.startswith("/hooks/"):
        hooks.append((at, body))
    elif path == "/count":
        out = str(len(hooks)).encode()
    elif path == "/results":
        out = json.dumps([[a, b.decode()] for a, b in hooks]).encode()
    elif path == "/reset":
        hooks.clear()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
"""


class Receiver:
    """The webhook receiver: a bare ASGI app under uvicorn in its own process."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "bench_receiver.py").write_text(RECEIVER)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench_receiver:app", "--lifespan", "off", *args],
            cwd=workdir,
        )
        self.http = httpx.Client(base_url=self.url, timeout=30)
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                self.count()
                return
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def count(self) -> int:
        return int(self.http.get("/count").text)

    def results(self) -> list[tuple[float, dict[str, Any]]]:
        return [(at, json.loads(body)) for at, body in self.http.get("/results").json()]

    def reset(self) -> None:
        self.http.post("/reset")

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(10)


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic() - RESERVE


@dataclass
class Outcome:
    """What one path measured."""

    name: str
    n: int
    note: str = ""
    pilot_rate: float = 0.0  # tasks/s, creation and scheduling of the pilot
    create_rate: float = 0.0  # tasks/s, the measured batch
    lead: float = 0.0
    margin: float = 0.0  # first due − creation (and scheduling) done
    once: int = 0
    lost: int = 0
    duplicates: int = 0
    rate: float = 0.0
    lateness: list[float] = field(default_factory=list)  # ms, received − due
    hops: dict[str, list[float]] = field(default_factory=dict)  # ms per hop
    stages: dict[str, float] = field(default_factory=dict)  # per s: count ÷ (last − first due)
    on_topic: Counter[str] = field(default_factory=Counter)  # events of these reminders by type
    publish_rate: float = 0.0  # all of them ÷ (the last at the broker − first due)
    cpu_create: dict[str, float] = field(default_factory=dict)
    cpu_fire: dict[str, float] = field(default_factory=dict)
    window: float = 0.0  # s, first due → last received


# -- one path ------------------------------------------------------------------------------


MACHINE = "machine"
CORES = os.cpu_count() or 1


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    found = {label: cpu_seconds(pid) for label, pid in pids.items()}
    found[MACHINE] = machine_busy()
    return found


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


def pending_intents(db: Path) -> int:
    """Scheduling intents not yet carried to daprd (0 on the embedded engine, which writes
    its jobs in the task's transaction)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM schedule_outbox").fetchone()[0])


def wait_drained(db: Path, deadline: float) -> None:
    while pending_intents(db) and time.monotonic() < deadline:
        time.sleep(0.02)


def create(user: User, dues: Sequence[datetime], title: str) -> list[str]:
    tasks = [{"title": f"{title} {i}", "due_at": iso(d)} for i, d in enumerate(dues)]
    r = user.http.post("/api/tasks/batch", json={"tasks": tasks}, timeout=120)
    assert r.status_code == 201, r.text
    return [t["id"] for t in r.json()["tasks"]]


def warm_up(user: User, receiver: Receiver, budget: Budget) -> None:
    """One reminder due in a second, received: every hop works (Kafka's consumer group has
    its partition, the connections are open)."""
    create(user, [datetime.now(UTC) + timedelta(seconds=1)], "warm-up")
    deadline = time.monotonic() + min(90.0, budget.left())
    while receiver.count() < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up reminder never reached the receiver")
        time.sleep(0.05)
    time.sleep(0.5)
    receiver.reset()


def measure(
    out: Outcome,
    user: User,
    receiver: Receiver,
    db: Path,
    pids: dict[str, int],
    budget: Budget,
    at_broker: Callable[[], Published] | None,
) -> None:
    warm_up(user, receiver, budget)
    # the pilot: far-future tasks, created and (on Dapr) scheduled; its rate sets the lead
    pilot = max(50, out.n // 5)
    began = time.monotonic()
    create(user, [datetime.now(UTC) + FAR] * pilot, "pilot")
    wait_drained(db, time.monotonic() + min(60.0, budget.left()))
    out.pilot_rate = pilot / (time.monotonic() - began)
    out.lead = max(2.0, 1.5 * out.n / out.pilot_rate + 1.0)

    start = datetime.now(UTC) + timedelta(seconds=out.lead)
    dues = [start + timedelta(seconds=i / out.n) for i in range(out.n)]
    first_due = start.timestamp()
    cpu0, began = snapshot(pids), time.monotonic()
    ids = set(create(user, dues, "bench"))
    wait_drained(db, time.monotonic() + min(out.lead + 60.0, budget.left()))
    out.create_rate = out.n / (time.monotonic() - began)
    out.margin = first_due - time.time()
    out.cpu_create = spent(cpu0, snapshot(pids))
    print(
        f"  {out.name}: pilot {out.pilot_rate:,.0f} tasks/s, lead {out.lead:.1f} s; "
        f"{out.n:,} created and scheduled at {out.create_rate:,.0f} tasks/s, "
        f"{out.margin:.1f} s before the first due time",
        flush=True,
    )

    time.sleep(max(0.0, first_due - time.time() - 0.05))
    cpu1 = snapshot(pids)
    deadline = time.monotonic() + min(first_due + 1.0 + GRACE - time.time(), budget.left())
    while receiver.count() < out.n and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu2 = snapshot(pids)
    time.sleep(max(0.0, min(SETTLE, budget.left())))
    hooks = [(at, body) for at, body in receiver.results() if body["data"]["task_id"] in ids]
    out.cpu_fire = spent(cpu1, cpu2)
    tally(out, hooks, db, at_broker() if at_broker else None)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def tally(
    out: Outcome,
    hooks: list[tuple[float, dict[str, Any]]],
    db: Path,
    published: Published | None,
) -> None:
    sends = Counter(body["id"] for _, body in hooks)
    out.once = sum(1 for c in sends.values() if c == 1)
    out.duplicates = sum(c - 1 for c in sends.values())
    out.lost = out.n - len(sends)
    first: dict[str, tuple[float, dict[str, Any]]] = {}
    for at, body in sorted(hooks, key=lambda h: h[0]):
        first.setdefault(body["id"], (at, body))
    if not first:
        return
    started = first_attempts(db, list(first))
    dues = {note: parse_time(b["data"]["scheduled_for"]) for note, (_, b) in first.items()}
    fired = {note: parse_time(b["data"]["fired_at"]) for note, (_, b) in first.items()}
    received = {note: at for note, (at, _) in first.items()}
    out.lateness = [(received[k] - dues[k]) * 1000 for k in first]
    out.window = max(received.values()) - min(dues.values())
    out.rate = len(first) / max(out.window, 1e-3)
    chain: list[tuple[str, dict[str, float]]] = [("due", dues), ("fired", fired)]
    if published is not None:
        ours = [(kind, note, at) for kind, note, at in published if note in first]
        out.on_topic = Counter(kind.removeprefix("io.duetime.") for kind, _, _ in ours)
        at_broker: dict[str, float] = {}
        for kind, note, at in ours:
            if kind.endswith("reminder.due"):
                at_broker.setdefault(note, at)
        if ours:
            span = max(at for _, _, at in ours) - min(dues.values())
            out.publish_rate = len(ours) / max(span, 1e-3)
        chain.append(("at the broker", at_broker))
    chain += [("attempt started", started), ("received", received)]
    start = min(dues.values())
    for stage, times in chain[1:]:
        reached = [times[k] for k in first if k in times]
        if reached:
            out.stages[stage] = len(reached) / max(max(reached) - start, 1e-3)
    for (a, times_a), (b, times_b) in itertools.pairwise(chain):
        out.hops[f"{a} → {b}"] = [
            (times_b[k] - times_a[k]) * 1000 for k in first if k in times_a and k in times_b
        ]


def first_attempts(db: Path, notes: list[str]) -> dict[str, float]:
    """Per notification: when its webhook's first attempt started (seconds since the
    epoch)."""
    started: dict[str, float] = {}
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        for i in range(0, len(notes), 500):
            chunk = notes[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT d.notification_id, min(a.started_us) FROM deliveries d "
                "JOIN delivery_attempts a ON a.delivery_id = d.id "
                f"WHERE d.channel = 'webhook' AND d.notification_id IN ({marks}) "
                "GROUP BY d.id",
                chunk,
            )
            for note, started_us in rows:
                started[note] = started_us / 1e6
    return started


Published = list[tuple[str, str, float]]
"""(event type, notification id, when it reached the broker) for each event on `reminders`."""


def redis_events(broker: RedisServer) -> Published:
    """Each entry of the `reminders` stream, timed by its id (when Redis appended it)."""
    with broker.client() as client:
        entries = client.xrange("reminders")
    found: Published = []
    for entry_id, fields in entries:
        event = json.loads(fields[b"data"])
        at = int(entry_id.split(b"-")[0]) / 1000
        found.append((event["type"], event["data"].get("notification_id", ""), at))
    return found


def kafka_events(broker: KafkaBroker) -> Published:
    """Each record of the `reminders` topic, timed by its timestamp (the producer's)."""
    found: Published = []
    for record in broker.read("reminders", timeout=60):
        event = record["value"] or {}
        if record["timestamp"] > 0 and "type" in event:
            note = event.get("data", {}).get("notification_id", "")
            found.append((event["type"], note, record["timestamp"] / 1000))
    return found


def run_embedded(out: Outcome, root: Path, receiver: Receiver, budget: Budget) -> None:
    env = {
        "DUETIME_DATA_DIR": str(root / "data"),
        "DUETIME_LOG_LEVEL": "info",
        "DUETIME_JWT_SECRET": SECRET,
        "DUETIME_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    root.mkdir(parents=True, exist_ok=True)
    server = Server(env, root / "serve.log").start()
    try:
        assert server.proc is not None
        user = User(server, "bench")
        r = user.http.put(
            "/api/me/channels",
            json={"webhook": {"url": f"{receiver.url}/hooks/bench", "enabled": True}},
        )
        assert r.status_code == 200, r.text
        pids = {"duetime api": server.proc.pid, "receiver": receiver.pid}
        try:
            measure(out, user, receiver, root / "data" / "duetime.db", pids, budget, None)
        finally:
            user.http.close()
    finally:
        server.stop()


def run_stack(
    out: Outcome, kind: str, root: Path, receiver: Receiver, budget: Budget, partitions: int
) -> None:
    broker: RedisServer | KafkaBroker
    if kind == "redis":
        broker = RedisServer(root / "redis").start()
    else:
        broker = KafkaBroker(root / "kafka", partitions=partitions).start()
    try:
        stack = PubSubStack(root / "stack", "redis" if kind == "redis" else "kafka", broker)
        try:
            stack.start()
            user = stack.user("bench", receiver)  # type: ignore[arg-type]  # duck-typed: .url
            procs = {
                "duetime api": stack.api.server.proc,
                "duetime worker": stack.worker.server.proc,
                "daprd api": stack.api.daprd.proc,
                "daprd worker": stack.worker.daprd.proc,
                "scheduler": stack.scheduler.proc,
                "broker": broker.proc,
            }
            pids = {k: p.pid for k, p in procs.items() if p is not None}
            pids["receiver"] = receiver.pid

            def at_broker() -> Published:
                if isinstance(broker, RedisServer):
                    return redis_events(broker)
                return kafka_events(broker)

            db = root / "stack" / "data" / "duetime.db"
            measure(out, user, receiver, db, pids, budget, at_broker)
        except Exception:
            print(stack.logs()[-6000:], flush=True)
            raise
        finally:
            stack.close()
    finally:
        broker.stop()


# -- the report ----------------------------------------------------------------------------

PROCESSES = (
    "duetime api",
    "duetime worker",
    "daprd api",
    "daprd worker",
    "scheduler",
    "broker",
    "receiver",
)


def p50_p99(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{ms(pct(values, 0.5))} · {ms(pct(values, 0.99))}"


def _percentile(q: float) -> Callable[[Outcome], str]:
    return lambda o: ms(pct(o.lateness, q)) if o.lateness else "—"


def _hop(hop: str) -> Callable[[Outcome], str]:
    return lambda o: p50_p99(o.hops.get(hop, []))


def _stage(stage: str) -> Callable[[Outcome], str]:
    return lambda o: f"{o.stages[stage]:,.0f}" if stage in o.stages else "—"


def table(outcomes: list[Outcome]) -> str:
    head = "| measure | " + " | ".join(TITLES[o.name] for o in outcomes) + " |"
    lines = [head, "| --- |" + " --- |" * len(outcomes)]

    def row(label: str, cell: Callable[[Outcome], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(o.note or cell(o) for o in outcomes) + " |")

    n = outcomes[0].n if outcomes else 0
    row("pilot: tasks created and scheduled/s", lambda o: f"{o.pilot_rate:,.0f}")
    row(f"{n:,} tasks created and scheduled/s", lambda o: f"{o.create_rate:,.0f}")
    row("lead · done before the first due time", lambda o: f"{o.lead:.1f} s · {o.margin:.1f} s")
    row(
        "received once · lost · duplicates", lambda o: f"{o.once:,} · {o.lost:,} · {o.duplicates:,}"
    )
    row("reminders/s (received ÷ (last received − first due))", lambda o: f"{o.rate:,.0f}")
    row("first due → last received", lambda o: f"{o.window:.2f} s")
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        row(f"due → received {label}", _percentile(q))
    row("due → received max", lambda o: ms(max(o.lateness)) if o.lateness else "—")
    hops: list[str] = []
    for o in sorted(outcomes, key=lambda o: -len(o.hops)):  # the longest chain sets the order
        hops += [h for h in o.hops if h not in hops]
    for hop in hops:
        row(f"{hop}, p50 · p99", _hop(hop))
    stages: list[str] = []
    for o in sorted(outcomes, key=lambda o: -len(o.stages)):
        stages += [s for s in o.stages if s not in stages]
    row(
        "events of these reminders on `reminders`, by type",
        lambda o: " · ".join(f"{n:,} {k}" for k, n in sorted(o.on_topic.items())) or "—",
    )
    row(
        "… all of them published/s (÷ (last at the broker − first due))",
        lambda o: f"{o.publish_rate:,.0f}" if o.publish_rate else "—",
    )
    for stage in stages:
        row(f"{stage}/s (count ÷ (last {stage} − first due))", _stage(stage))
    return "\n".join(lines)


def cpu_table(outcomes: list[Outcome]) -> str:
    head = "| CPU s, firing (creation) | " + " | ".join(TITLES[o.name] for o in outcomes) + " |"
    lines = [head, "| --- |" + " --- |" * len(outcomes)]
    for proc in PROCESSES:
        cells = []
        for o in outcomes:
            if o.note or proc not in o.cpu_fire:
                cells.append("—")
            else:
                cells.append(f"{o.cpu_fire[proc]:.2f} ({o.cpu_create[proc]:.2f})")
        lines.append(f"| {proc} | " + " | ".join(cells) + " |")
    ours: list[tuple[float, float]] = []
    for o in outcomes:
        if o.note or not o.cpu_fire:
            ours.append((float("nan"), float("nan")))
            continue
        ours.append(
            (
                sum(v for k, v in o.cpu_fire.items() if k != MACHINE),
                sum(v for k, v in o.cpu_create.items() if k != MACHINE),
            )
        )
    cells = [
        "—" if o.note else f"{fire:.2f} ({make:.2f}) · {fire / o.n * 1000:.1f} ms/reminder"
        for o, (fire, make) in zip(outcomes, ours, strict=True)
    ]
    lines.append("| all of these | " + " | ".join(cells) + " |")
    cells = [
        "—"
        if o.note
        else f"{max(0.0, o.cpu_fire[MACHINE] - fire):.2f} "
        f"({max(0.0, o.cpu_create[MACHINE] - make):.2f})"
        for o, (fire, make) in zip(outcomes, ours, strict=True)
    ]
    lines.append("| other processes on the machine | " + " | ".join(cells) + " |")
    cells = [
        "—" if o.note else f"{o.window:.2f} s (× {CORES} cores = {CORES * o.window:.2f} CPU s)"
        for o in outcomes
    ]
    lines.append("| firing window, wall | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> list[Outcome]:
    budget = Budget(args.budget)
    outcomes: list[Outcome] = []
    receiver = Receiver(tmp / "receiver")
    try:
        for path in args.paths:
            out = Outcome(path, args.count)
            outcomes.append(out)
            if budget.left() < NEEDS[path]:
                out.note = "skipped (time budget)"
                continue
            began = time.monotonic()
            load = os.getloadavg()[0]
            print(f"{TITLES[path]}: starting (load average {load:.2f})", flush=True)
            try:
                if path == "embedded":
                    run_embedded(out, tmp / path, receiver, budget)
                else:
                    run_stack(out, path, tmp / path, receiver, budget, args.kafka_partitions)
            except Exception as exc:  # one broken path does not lose the others' figures
                out.note = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
                print(f"  {path}: {out.note}", flush=True)
            receiver.reset()
            print(f"  {TITLES[path]}: done in {time.monotonic() - began:.0f} s", flush=True)
    finally:
        receiver.close()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 reminders per path")
    parser.add_argument("--count", type=int, help="reminders per path (default 1,000)")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds for the whole run")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument(
        "--kafka-partitions",
        type=int,
        default=1,
        help="partitions of each Kafka topic (default 1, as in the tests; daprd hands the "
        "worker one message at a time per partition)",
    )
    args = parser.parse_args()
    if args.count is None:
        args.count = 200 if args.quick else 1000
    began = time.monotonic()
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {args.count:,} reminders "
        f"due within one second per path, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="duetime-pubsub-bench-") as tmp:
        outcomes = run(args, Path(tmp))
    load = os.getloadavg()
    print(
        f"\ntotal {time.monotonic() - began:.0f} s, load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    print(table(outcomes))
    print()
    print(cpu_table(outcomes))


if __name__ == "__main__":
    main()
