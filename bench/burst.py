"""A burst: N one-shot jobs due at the same instant, on the embedded engine.

    .venv/bin/python -m bench.burst --jobs 100000

Measures, from the due time: the first handler start, the median, the last start, and when
every outcome is committed (the jobs table is empty again). Checks that none fired early and
each fired once.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from duetime.db.tables import jobs as jobs_table
from duetime.jobs import Job, Trigger
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore


async def run(total: int, url: str, lead: float) -> dict[str, float]:
    started: dict[str, float] = {}
    twice: list[str] = []
    done = asyncio.Event()

    async def handler(trigger: Trigger) -> None:
        if trigger.name in started:
            twice.append(trigger.name)
        started[trigger.name] = time.time()
        if len(started) == total:
            done.set()

    store = SqlJobStore(url)
    scheduler = EmbeddedJobScheduler(store)
    scheduler.add_handler("", handler)
    await scheduler.start()
    due = time.time() + lead + total / 20_000
    due_time = datetime.fromtimestamp(due, UTC).isoformat().replace("+00:00", "Z")
    jobs = [Job(f"burst-{i:07d}", due_time=due_time) for i in range(total)]
    for i in range(0, total, 1000):
        await scheduler.schedule_many(jobs[i : i + 1000])
    if time.time() > due:
        raise SystemExit(f"scheduling took past the due time; raise --lead above {lead}")
    await asyncio.wait_for(done.wait(), timeout=due - time.time() + 120)
    while True:  # every outcome committed: each one-shot job's row is deleted
        async with store.engine.connect() as conn:
            left = await conn.scalar(select(func.count()).select_from(jobs_table))
        if not left:
            break
        await asyncio.sleep(0.005)
    committed = time.time()
    await scheduler.stop()
    times = sorted(started.values())
    early = sum(1 for t in times if t < due)
    return {
        "first_ms": (times[0] - due) * 1000,
        "p50_ms": (times[len(times) // 2] - due) * 1000,
        "last_ms": (times[-1] - due) * 1000,
        "committed_ms": (committed - due) * 1000,
        "rate": total / max(times[-1] - due, 1e-9),
        "early": early,
        "twice": len(twice),
        "fired": len(started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--lead", type=float, default=2.0, help="seconds before the due time")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        r = asyncio.run(run(args.jobs, url, args.lead))
    print(f"{args.jobs:,} jobs due at one instant, backend {url.split(':')[0]}")
    print(
        f"due → first start {r['first_ms']:.1f} ms · median {r['p50_ms']:.1f} ms · "
        f"last {r['last_ms']:.1f} ms ({r['rate']:,.0f} triggers/s) · all outcomes committed "
        f"{r['committed_ms']:.1f} ms"
    )
    print(f"early: {r['early']}  fired twice: {r['twice']}  fired: {r['fired']:,}/{args.jobs:,}")


if __name__ == "__main__":
    main()
