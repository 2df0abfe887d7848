"""Lateness (handler start − due time) of the embedded engine on SQLite.

    .venv/bin/python -m bench.lateness --rate 1000 --seconds 10

Schedules rate×seconds one-shot jobs spread evenly over the window, then measures when each
handler starts. Also checks that none fired early and each fired once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from duetime.jobs import Job, Trigger
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(rate: int, seconds: int, url: str) -> None:
    lateness: dict[str, float] = {}
    done = asyncio.Event()
    total = rate * seconds

    async def handler(trigger: Trigger) -> None:
        started = datetime.now(UTC)
        assert trigger.name not in lateness, f"{trigger.name} fired twice"
        lateness[trigger.name] = (started - trigger.scheduled_at).total_seconds() * 1000
        if len(lateness) == total:
            done.set()

    scheduler = EmbeddedJobScheduler(SqlJobStore(url))
    scheduler.add_handler("", handler)
    await scheduler.start()
    start = datetime.now(UTC) + timedelta(seconds=3)
    step = timedelta(seconds=1) / rate
    jobs = [
        Job(f"job-{i:07d}", due_time=(start + i * step).isoformat().replace("+00:00", "Z"))
        for i in range(total)
    ]
    for i in range(0, total, 1000):
        await scheduler.schedule_many(jobs[i : i + 1000])
    await asyncio.wait_for(done.wait(), timeout=seconds + 60)
    await scheduler.stop()
    values = list(lateness.values())
    early = [v for v in values if v < 0]
    print(f"jobs: {total} at {rate}/s over {seconds}s, backend {url.split(':')[0]}")
    print(
        f"lateness ms: p50 {_pct(values, 0.50):.2f}  p90 {_pct(values, 0.90):.2f}  "
        f"p99 {_pct(values, 0.99):.2f}  max {max(values):.2f}  mean {statistics.mean(values):.2f}"
    )
    print(f"early: {len(early)}  fired: {len(values)}/{total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(run(args.rate, args.seconds, url))


if __name__ == "__main__":
    main()
