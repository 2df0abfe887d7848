"""Jobs scheduled per second through the Python API (embedded, SQLite): in batches, one
call at a time, and `--concurrency` calls in flight (what a server's requests do; concurrent
calls are group-committed).

.venv/bin/python -m bench.schedule_rate --jobs 100000 --batch 1000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from duetime.jobs import Job
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore


async def run(total: int, batch: int, url: str, concurrency: int) -> None:
    scheduler = EmbeddedJobScheduler(SqlJobStore(url))
    await scheduler.start()
    jobs = [Job(f"job-{i:08d}", due_time="720h", data={"i": i}) for i in range(total)]
    began = time.perf_counter()
    for i in range(0, total, batch):
        await scheduler.schedule_many(jobs[i : i + batch])
    elapsed = time.perf_counter() - began
    one_by_one = [Job(f"single-{i:05d}", due_time="720h") for i in range(2000)]
    began = time.perf_counter()
    for job in one_by_one:
        await scheduler.schedule(job)
    single = time.perf_counter() - began
    slots = asyncio.Semaphore(concurrency)

    async def one(job: Job) -> None:
        async with slots:
            await scheduler.schedule(job)

    together = [Job(f"together-{i:05d}", due_time="720h", data={"i": i}) for i in range(4000)]
    began = time.perf_counter()
    await asyncio.gather(*(one(job) for job in together))
    concurrent = time.perf_counter() - began
    await scheduler.stop()
    print(
        f"backend {url.split(':')[0]}: {total} jobs in batches of {batch}: "
        f"{total / elapsed:,.0f} jobs/s ({elapsed:.2f} s)"
    )
    print(f"one at a time (one commit each): {len(one_by_one) / single:,.0f} jobs/s")
    print(f"{concurrency} calls in flight: {len(together) / concurrent:,.0f} jobs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(run(args.jobs, args.batch, url, args.concurrency))


if __name__ == "__main__":
    main()
