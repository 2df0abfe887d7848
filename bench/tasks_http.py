"""The task API over HTTP: creation rate, batch rate, and inbox lateness.

    .venv/bin/python -m bench.tasks_http --tasks 5000 --concurrency 32

Starts `duetime serve` (embedded engine, SQLite in a temp dir) and drives it from this
process over loopback; both share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import httpx

from duetime.auth import issue_token

SECRET = "bench-secret-0123456789abcdef0123456789"
PORT = 18766


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


async def single_creates(api: httpx.AsyncClient, total: int, concurrency: int) -> float:
    due = iso(datetime.now(UTC) + timedelta(days=30))
    queue = iter(range(total))

    async def worker() -> None:
        for i in queue:
            r = await api.post("/api/tasks", json={"title": f"task {i}", "due_at": due})
            assert r.status_code == 201, r.text

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - began)


async def batch_creates(api: httpx.AsyncClient, batches: int, size: int) -> float:
    due = iso(datetime.now(UTC) + timedelta(days=30))
    body = {"tasks": [{"title": f"imported {i}", "due_at": due} for i in range(size)]}
    began = time.perf_counter()
    for _ in range(batches):
        r = await api.post("/api/tasks/batch", json=body)
        assert r.status_code == 201, r.text
    return batches * size / (time.perf_counter() - began)


async def inbox_lateness(api: httpx.AsyncClient, count: int) -> list[float]:
    due = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    tasks = [
        {"title": f"due {i}", "due_at": iso(due + timedelta(microseconds=i * 1_000_000 // count))}
        for i in range(count)
    ]
    r = await api.post("/api/tasks/batch", json={"tasks": tasks})
    assert r.status_code == 201, r.text
    await asyncio.sleep((due - datetime.now(UTC)).total_seconds() + 3)
    found: list[float] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/api/notifications", params=params)).json()
        found += [n["lateness_ms"] for n in page["notifications"] if n["title"].startswith("due ")]
        cursor = page["next_cursor"]
        if not cursor:
            return found


async def run(args: argparse.Namespace) -> None:
    token = issue_token(SECRET, "bench", ttl=timedelta(hours=1), now=datetime.now(UTC))
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{PORT}",
        headers={"authorization": f"Bearer {token}"},
        timeout=120,
        limits=limits,
    ) as api:
        rate = await single_creates(api, args.tasks, args.concurrency)
        print(f"POST /api/tasks, {args.concurrency} concurrent: {rate:,.0f} tasks/s")
        rate = await batch_creates(api, 10, 1000)
        print(f"POST /api/tasks/batch, 10 x 1,000 tasks: {rate:,.0f} tasks/s")
        lateness = await inbox_lateness(api, 1000)
        print(
            f"inbox lateness, 1,000 reminders due within one second: delivered {len(lateness)}, "
            f"p50 {_pct(lateness, 0.5):.1f} ms, p99 {_pct(lateness, 0.99):.1f} ms, "
            f"max {max(lateness):.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DUETIME_DATA_DIR": tmp,
            "DUETIME_PORT": str(PORT),
            "DUETIME_JWT_SECRET": SECRET,
            "DUETIME_LOG_LEVEL": "warning",
        }
        proc = subprocess.Popen([sys.executable, "-m", "duetime", "serve"], env=env)
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{PORT}/readyz").status_code == 204:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(run(args))
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
