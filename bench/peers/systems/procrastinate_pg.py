"""procrastinate 3 on PostgreSQL: `configure(schedule_at=due).defer_async(...)`, a worker.

The worker listens for PostgreSQL notifications of new jobs (`listen_notify=True`, the
default), but a job deferred for later is notified when it is *inserted*, not when it falls
due: between notifications the worker polls every `fetch_job_polling_interval` (default 5 s;
0.1 s here, so a due job waits at most ~100 ms for the next fetch). `concurrency=10` (default 1)
jobs at once. Batches are `job_manager.batch_defer_jobs_async` (one INSERT for many jobs,
each with its own `scheduled_at`), 1,000 a call. The driver is psycopg 3
(`PsycopgConnector`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bench.peers import sink
from bench.peers.systems.base import Env, Jobs, System

POLLING_INTERVAL = 0.1
CONCURRENCY = 10


def make_app(url: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    app.task(name="bench_job")(_bench_job)
    return app


async def _bench_job(name: str, due: float) -> None:
    sink.record(name, due)


class ProcrastinatePostgres(System):
    name = "procrastinate-postgres"
    label = "procrastinate (PostgreSQL)"
    store = "PostgreSQL"
    batch = True

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.database = env.pg.new_database()

    def config(self) -> dict[str, Any]:
        return {"url": self.env.pg.url(self.database)}

    def setup(self) -> None:
        async def apply() -> None:
            app = make_app(self.config()["url"])
            async with app.open_async():
                await app.schema_manager.apply_schema_async()

        asyncio.run(apply())

    def _schedule(self, jobs: Jobs, batch: bool) -> None:
        asyncio.run(self._defer(jobs, batch))

    async def _defer(self, jobs: Jobs, batch: bool) -> None:
        app = make_app(self.config()["url"])
        task = app.tasks["bench_job"]
        async with app.open_async():
            if not batch:
                for name, due in jobs:
                    await task.configure(schedule_at=datetime.fromtimestamp(due, UTC)).defer_async(
                        name=name, due=due
                    )
                return
            for n in range(0, len(jobs), 1000):
                made = [
                    task.configure(schedule_at=datetime.fromtimestamp(due, UTC)).job.evolve(
                        task_kwargs={"name": name, "due": due}
                    )
                    for name, due in jobs[n : n + 1000]
                ]
                await app.job_manager.batch_defer_jobs_async(made)

    def cleanup(self) -> None:
        self.env.pg.drop_database(self.database)


def run_worker(cfg: dict[str, Any]) -> None:
    asyncio.run(_worker(cfg["url"]))


async def _worker(url: str) -> None:
    app = make_app(url)
    async with app.open_async():
        await app.run_worker_async(
            concurrency=CONCURRENCY,
            fetch_job_polling_interval=POLLING_INTERVAL,
            listen_notify=True,
            install_signal_handlers=True,
        )
