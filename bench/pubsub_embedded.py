"""Dapr pub/sub publish → subscriber-received, duetime's embedded broker vs real daprd +
Redis, in one run.

    .venv/bin/python -m bench.pubsub_embedded                 # 10,000 events per path
    .venv/bin/python -m bench.pubsub_embedded --count 2000 --concurrency 32

Needs daprd and scheduler v1.16.5 (`DUETIME_DAPR_BIN_DIR`) and Debian's redis-server.

Each path on fresh processes: a subscriber app (`tests.subscriber`, a threaded HTTP server
in this process, answering `{"status":"SUCCESS"}`), subscribed programmatically to one topic;
then `--count` events published over HTTP (`POST /v1.0/publish/pubsub/bench`, JSON, each
carrying its send time) by `--concurrency` concurrent publishers on keep-alive connections
(duetime's small HTTP/1.1 client, so the publishing side costs little CPU on both paths).

- **embedded**: `duetime serve` (SQLite in a fresh data dir; the app's URL is the
  subscriber); the broker's defaults (10 deliveries in flight).
- **daprd + Redis**: a Dapr Scheduler, daprd with a `pubsub.redis` Component (defaults:
  10 workers) on a real Redis (append-only file, fsync always, as tests/brokers.py runs it).

Reported per path: publish rate (events ÷ time to publish them all), received once / lost /
duplicates, end-to-end rate (received ÷ (last received − first sent)), and p50/p99/max of
received − sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tests.brokers import RedisServer
from tests.conftest import free_port
from tests.e2e.conftest import Server
from tests.subscriber import SUCCESS, Subscriber

from duetime.delivery.http1 import Http1Client
from duetime.localdapr import Daprd, Scheduler

TOPIC = "bench"
SUBSCRIPTIONS = [{"pubsubname": "pubsub", "topic": TOPIC, "route": "/bench"}]


class Clocked:
    """The subscriber's record: receive time per event index."""

    def __init__(self) -> None:
        self.received: dict[int, list[float]] = {}
        self.sent: dict[int, float] = {}

    def answer(self, path: str, body: bytes) -> tuple[int, bytes]:
        now = time.time()
        try:
            data = json.loads(body)["data"]
            self.received.setdefault(int(data["i"]), []).append(now)
            self.sent.setdefault(int(data["i"]), float(data["t"]))
        except (ValueError, KeyError, TypeError):
            pass
        return SUCCESS


async def publish_all(url: str, count: int, concurrency: int) -> float:
    """Publishes `count` events; returns the seconds it took."""
    host, port = url.removeprefix("http://").split(":")
    client = Http1Client(timeout=60, max_connections=concurrency)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    failures: list[int] = []

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = json.dumps({"i": i, "t": time.time()}).encode()
            answer = await client.post(
                scheme="http",
                connect_host=host,
                port=int(port),
                host_header=f"{host}:{port}",
                server_name=host,
                target=f"/v1.0/publish/pubsub/{TOPIC}",
                body=body,
                headers={"content-type": "application/json"},
            )
            if answer.status != 204:
                failures.append(answer.status)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await client.aclose()
    if failures:
        raise RuntimeError(f"{len(failures)} publishes failed: {failures[:5]}")
    return elapsed


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.05)


def measure(name: str, url: str, clocked: Clocked, count: int, concurrency: int) -> dict[str, Any]:
    # warm-up: one event end to end
    httpx.post(f"{url}/v1.0/publish/pubsub/{TOPIC}", json={"i": -1, "t": time.time()}, timeout=30)
    wait_for(lambda: -1 in clocked.received, 30)
    clocked.received.clear()
    clocked.sent.clear()
    first_sent = time.time()
    publish_s = asyncio.run(publish_all(url, count, concurrency))
    wait_for(lambda: len(clocked.received) >= count, 120)
    time.sleep(1.0)
    received = {i: v for i, v in clocked.received.items() if 0 <= i < count}
    latencies = sorted(v[0] - clocked.sent[i] for i, v in received.items())
    last = max((v[0] for v in received.values()), default=first_sent)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "path": name,
        "published/s": round(count / publish_s),
        "received": len(received),
        "lost": count - len(received),
        "duplicates": sum(len(v) - 1 for v in received.values()),
        "end-to-end/s": round(len(received) / max(last - first_sent, 1e-9)),
        "p50 ms": round(q[49] * 1000, 1),
        "p99 ms": round(q[98] * 1000, 1),
        "max ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


EMBEDDED_ENV: dict[str, str] = {}


def run_embedded(root: Path, count: int, concurrency: int) -> dict[str, Any]:
    clocked = Clocked()
    sub = Subscriber(SUBSCRIPTIONS)
    sub.answer = clocked.answer
    server = Server(
        {
            "DUETIME_DATA_DIR": str(root / "data"),
            "DUETIME_APP_URL": sub.url,
            "DUETIME_GRPC_PORT": str(free_port()),
            "DUETIME_ACCESS_LOG": "false",
            "DUETIME_LOG_LEVEL": "warning",
            **EMBEDDED_ENV,
        },
        root / "duetime.log",
    )
    try:
        server.start()
        wait_for(lambda: sub.subscribe_calls > 0, 30)
        time.sleep(0.5)
        return measure("duetime embedded (SQLite)", server.url, clocked, count, concurrency)
    finally:
        server.stop()
        sub.close()


def run_daprd(root: Path, count: int, concurrency: int) -> dict[str, Any]:
    clocked = Clocked()
    sub = Subscriber(SUBSCRIPTIONS)
    sub.answer = clocked.answer
    redis = RedisServer(root / "redis").start()
    scheduler = Scheduler(root / "scheduler").start()
    component = (
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: pubsub\n"
        "spec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n"
        f"  - name: redisHost\n    value: {redis.address}\n"
    )
    daprd = Daprd(
        root / "daprd",
        app_id="bench",
        app_port=sub.port,
        scheduler_address=scheduler,
        resources={"pubsub.yaml": component},
    )
    try:
        daprd.start(wait_for_app=True)
        wait_for(lambda: sub.subscribe_calls > 0, 30)
        time.sleep(1.0)
        return measure("daprd 1.16.5 + Redis", daprd.http_url, clocked, count, concurrency)
    finally:
        daprd.stop()
        scheduler.stop()
        redis.stop()
        sub.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--paths", nargs="+", default=["embedded", "daprd"])
    parser.add_argument(
        "--env", nargs="*", default=[], help="NAME=VALUE settings for the duetime process"
    )
    args = parser.parse_args()
    EMBEDDED_ENV.update(item.split("=", 1) for item in args.env)
    results = []
    with tempfile.TemporaryDirectory(prefix="duetime-bench-pubsub-") as tmp:
        for path in args.paths:
            root = Path(tmp) / path
            root.mkdir()
            runner = run_embedded if path == "embedded" else run_daprd
            results.append(runner(root, args.count, args.concurrency))
            print(json.dumps(results[-1]), flush=True)
    print(
        f"\n{args.count} events, {args.concurrency} concurrent publishers, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    keys = list(results[0])
    print(" | ".join(keys))
    for r in results:
        print(" | ".join(str(r[k]) for k in keys))


if __name__ == "__main__":
    main()
