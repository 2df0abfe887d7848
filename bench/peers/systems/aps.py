"""APScheduler 3.11 in an agent: `AsyncIOScheduler`, one date-trigger job per due time.

Settings for exact timing, from its user guide: `misfire_grace_time=None` (run a job however
late it is; the default of 1 s *skips* a job that is more than 1 s late, e.g. after a restart
or under load), `coalesce=False` (each job is its own run), `max_instances=1`. Jobs are
coroutine functions, so the default `AsyncIOExecutor` runs them on the scheduler's loop (no
thread pool). Two stores: `MemoryJobStore` (the default) and `SQLAlchemyJobStore` on a SQLite
file (its durable store). APScheduler has no batch call: `add_job` one at a time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bench.peers import sink
from bench.peers.systems.base import Jobs, System


class ApsMemory(System):
    name = "aps-memory"
    label = "APScheduler (memory)"
    store = "memory"
    agent = True

    def config(self) -> dict[str, Any]:
        return {"store": "memory"}


class ApsSqlite(System):
    name = "aps-sqlite"
    label = "APScheduler (SQLAlchemy, SQLite)"
    store = "SQLite"
    agent = True

    def config(self) -> dict[str, Any]:
        return {"store": f"sqlite:///{self.env.tmp / 'aps.db'}"}

    def store_bytes(self) -> int | None:
        return sum(p.stat().st_size for p in self.env.tmp.glob("aps.db*"))


async def aps_job(name: str, due: float) -> None:
    sink.record(name, due)


def run_worker(cfg: dict[str, Any]) -> None:
    asyncio.run(_agent(cfg["store"]))


async def _agent(store_url: str) -> None:
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bench.peers.worker import serve_agent

    store = MemoryJobStore() if store_url == "memory" else SQLAlchemyJobStore(url=store_url)
    scheduler = AsyncIOScheduler(
        jobstores={"default": store},
        job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        timezone=UTC,
    )
    scheduler.start()

    async def schedule(jobs: Jobs, batch: bool) -> None:
        for n, (name, due) in enumerate(jobs):
            scheduler.add_job(
                aps_job,
                "date",
                run_date=datetime.fromtimestamp(due, UTC),
                args=[name, due],
                id=name,
            )
            if n % 100 == 99:
                await asyncio.sleep(0)  # as an app would: the loop runs between requests

    try:
        await serve_agent(schedule)
    finally:
        scheduler.shutdown(wait=True)
