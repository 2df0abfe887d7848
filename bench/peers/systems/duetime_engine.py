"""duetime's embedded engine: `EmbeddedJobScheduler` over `SqlJobStore`, in an agent.

As README's "Jobs from Python": the process that schedules runs the engine; its handler is
an in-process coroutine. Batches go through `schedule_many` (1,000 a call), single jobs
through `schedule` one after the other. On SQLite the store is in WAL mode with
`synchronous=FULL` (duetime's defaults); on PostgreSQL it is the bench's server.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bench.peers import sink
from bench.peers.systems.base import Env, Jobs, System


class DuetimeSqlite(System):
    name = "duetime-sqlite"
    label = "duetime (SQLite)"
    store = "SQLite"
    batch = True
    agent = True

    def config(self) -> dict[str, Any]:
        return {"url": f"sqlite:///{self.env.tmp / 'duetime.db'}"}

    def store_bytes(self) -> int | None:
        return sum(p.stat().st_size for p in self.env.tmp.glob("duetime.db*"))


class DuetimePostgres(System):
    name = "duetime-postgres"
    label = "duetime (PostgreSQL)"
    store = "PostgreSQL"
    batch = True
    agent = True

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.database = env.pg.new_database()

    def config(self) -> dict[str, Any]:
        return {"url": self.env.pg.url(self.database)}

    def cleanup(self) -> None:
        self.env.pg.drop_database(self.database)


def run_worker(cfg: dict[str, Any]) -> None:
    asyncio.run(_agent(cfg["url"]))


def _rfc3339(due: float) -> str:
    return datetime.fromtimestamp(due, UTC).isoformat().replace("+00:00", "Z")


async def _agent(url: str) -> None:
    from bench.peers.worker import serve_agent
    from duetime.jobs import Job, Trigger
    from duetime.jobs.embedded import EmbeddedJobScheduler
    from duetime.jobs.sql_store import SqlJobStore

    async def handler(trigger: Trigger) -> None:
        assert isinstance(trigger.data, dict)
        sink.record(trigger.name, float(trigger.data["due"]))

    scheduler = EmbeddedJobScheduler(SqlJobStore(url))
    scheduler.add_handler("", handler)
    await scheduler.start()

    async def schedule(jobs: Jobs, batch: bool) -> None:
        made = [Job(i, due_time=_rfc3339(d), data={"due": d}) for i, d in jobs]
        if batch:
            for n in range(0, len(made), 1000):
                await scheduler.schedule_many(made[n : n + 1000])
        else:
            for job in made:
                await scheduler.schedule(job)

    try:
        await serve_agent(schedule)
    finally:
        await scheduler.stop()
