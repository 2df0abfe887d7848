"""Start-up time and memory of `duetime serve` with many pending jobs (embedded, SQLite).

    .venv/bin/python -m bench.pending --jobs 1000000

Fills a database with far-future jobs, then starts the server on it and measures the time
from process start to `/readyz` answering 204, and the process's RSS once ready and after
scheduling and firing a few more jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from duetime.jobs import Job
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore


async def fill(url: str, total: int) -> None:
    scheduler = EmbeddedJobScheduler(SqlJobStore(url))
    await scheduler.start()
    batch = 5000
    for i in range(0, total, batch):
        await scheduler.schedule_many(
            [Job(f"pending-{n:08d}", due_time="8760h", data={"n": n}) for n in range(i, i + batch)]
        )
    await scheduler.stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        began = time.perf_counter()
        asyncio.run(fill(url, args.jobs))
        print(f"filled {args.jobs:,} jobs in {time.perf_counter() - began:.1f} s")
        env = {
            **os.environ,
            "DUETIME_DATABASE_URL": url,
            "DUETIME_PORT": "18765",
            "DUETIME_DATA_DIR": tmp,
            "DUETIME_LOG_LEVEL": "warning",
        }
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "duetime", "serve"], env=env)
        try:
            while True:
                try:
                    if httpx.get("http://127.0.0.1:18765/readyz", timeout=1).status_code == 204:
                        break
                except httpx.HTTPError:
                    time.sleep(0.02)
            ready = time.perf_counter() - began
            print(f"ready in {ready:.2f} s, RSS {rss_mb(proc.pid):.0f} MB")
            with httpx.Client(base_url="http://127.0.0.1:18765") as api:
                for i in range(200):
                    api.post(f"/v1.0/jobs/extra-{i}", json={"dueTime": "0s"})
                time.sleep(2)
                listed = api.get("/v1.0/jobs", params={"prefix": "pending-", "limit": 1}).json()
                assert listed["jobs"], "pending jobs missing"
            print(f"after 200 more jobs fired: RSS {rss_mb(proc.pid):.0f} MB")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
