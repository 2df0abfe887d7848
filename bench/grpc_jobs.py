"""gRPC `ScheduleJobAlpha1` calls per second from one client, duetime vs real daprd.

    .venv/bin/python -m bench.grpc_jobs            # 3 rounds of 2,000 calls per mode
    .venv/bin/python -m bench.grpc_jobs --quick    # 1 round of 500

duetime: a real `duetime serve` (embedded engine, SQLite in a temporary directory, its Dapr
gRPC API on a free port). Dapr: a real scheduler and daprd 1.16.5 (`duetime.localdapr`,
built by scripts/build-dapr.sh) with an idle HTTP app. Both run for the whole bench; the
client (grpc.aio, one channel per target, the `dapr` package's `DaprStub`) runs in this
process and the rounds are interleaved: duetime, daprd, duetime, daprd, … so a busy moment of
the machine falls on both.

Modes: `sequential` (one call at a time: the latency of one schedule) and `concurrent` (32
calls in flight: the throughput). Every call schedules a new far-future one-shot job with a
small `google.protobuf.Value` payload, so nothing fires during the run. Reported per target
and mode: calls/s (median of the rounds and the best), and the p50/p99 latency of one call
over all rounds; plus the CPU seconds each server process used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dapr.proto.runtime.v1 as api
import grpc.aio
import httpx
from dapr.proto.runtime.v1 import dapr_pb2_grpc
from google.protobuf import any_pb2, struct_pb2

from duetime.localdapr import Daprd, Scheduler, free_port

CONCURRENCY = 32
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Idle(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Target:
    name: str
    address: str
    pids: list[int]
    rates: dict[str, list[float]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    cpu: float = 0.0


def _request(prefix: str, i: int) -> api.ScheduleJobRequest:
    data = any_pb2.Any()
    data.Pack(struct_pb2.Value(string_value=f"payload-{i}"))
    return api.ScheduleJobRequest(
        job=api.Job(name=f"{prefix}-{i}", due_time="720h", data=data), overwrite=True
    )


async def _round(target: Target, mode: str, calls: int, round_no: int) -> None:
    async with grpc.aio.insecure_channel(target.address) as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        await stub.ScheduleJobAlpha1(_request("warm", round_no), timeout=30)  # connect
        prefix = f"{mode}-{round_no}"
        latencies: list[float] = []

        async def one(i: int) -> None:
            started = time.perf_counter()
            await stub.ScheduleJobAlpha1(_request(prefix, i), timeout=60)
            latencies.append(time.perf_counter() - started)

        before = sum(cpu_seconds(p) for p in target.pids)
        started = time.perf_counter()
        if mode == "sequential":
            for i in range(calls):
                await one(i)
        else:
            queue = iter(range(calls))

            async def worker() -> None:
                for i in queue:
                    await one(i)

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
        target.cpu += sum(cpu_seconds(p) for p in target.pids) - before
    target.rates.setdefault(mode, []).append(calls / elapsed)
    target.latencies.setdefault(mode, []).extend(latencies)


def _start_duetime(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "DUETIME_DATA_DIR": str(root / "duetime"),
        "DUETIME_PORT": str(http_port),
        "DUETIME_GRPC_PORT": str(grpc_port),
        "DUETIME_LOG_LEVEL": "warning",
        "DUETIME_ACCESS_LOG": "false",
    }
    with (root / "duetime.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "duetime", "serve"], env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((root / "duetime.log").read_text()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=1).status_code == 204:
                return proc, grpc_port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("duetime not ready in 60 s")


async def _bench(targets: list[Target], calls: int, rounds: int) -> None:
    for round_no in range(rounds):
        for mode in ("sequential", "concurrent"):
            for target in targets if round_no % 2 == 0 else reversed(targets):
                await _round(target, mode, calls, round_no)
                print(
                    f"  round {round_no + 1} {mode:10} {target.name:7} "
                    f"{target.rates[mode][-1]:8.0f} calls/s",
                    flush=True,
                )


def _report(targets: list[Target], calls: int, rounds: int) -> None:
    print()
    print(
        f"ScheduleJobAlpha1, {calls} calls × {rounds} rounds per mode; {platform.node()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'target':8} {'mode':11} {'median/s':>9} {'best/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for target in targets:
        for mode in ("sequential", "concurrent"):
            rates, lat = target.rates[mode], target.latencies[mode]
            print(
                f"{target.name:8} {mode:11} {statistics.median(rates):9.0f} {max(rates):8.0f} "
                f"{pct(lat, 0.5) * 1000:7.2f} {pct(lat, 0.99) * 1000:7.2f}"
            )
    for target in targets:
        print(f"CPU of {target.name} (daprd: + scheduler) while measured: {target.cpu:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 500 calls")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    calls = args.calls or (500 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="bench-grpc-") as tmp:
        root = Path(tmp)
        app = ThreadingHTTPServer(("127.0.0.1", 0), _Idle)
        threading.Thread(target=app.serve_forever, daemon=True).start()
        scheduler = Scheduler(root / "scheduler")
        daprd = Daprd(
            root / "daprd",
            app_id="bench",
            app_port=int(app.server_address[1]),
            scheduler_address=scheduler,
        )
        duetime, grpc_port = _start_duetime(root)
        try:
            scheduler.start()
            daprd.start(wait_for_app=True)
            assert daprd.pid is not None and scheduler.pid is not None
            targets = [
                Target("duetime", f"127.0.0.1:{grpc_port}", [duetime.pid]),
                Target("daprd", f"127.0.0.1:{daprd.ports.grpc}", [daprd.pid, scheduler.pid]),
            ]
            asyncio.run(_bench(targets, calls, rounds))
            _report(targets, calls, rounds)
        finally:
            daprd.stop()
            scheduler.stop()
            duetime.terminate()
            duetime.wait(15)
            app.shutdown()


if __name__ == "__main__":
    main()
