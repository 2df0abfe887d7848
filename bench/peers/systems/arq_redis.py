"""arq: `enqueue_job(..., _defer_until=due, _job_id=id)` on Redis, an arq `Worker`.

Deferred jobs wait in a Redis sorted set scored by due time; the worker polls it every
`poll_delay` seconds (default 0.5 s; 0.1 s here, so the poll costs at most 100 ms of
lateness) and runs up to `max_jobs` at once (default 10; 100 here, as duetime's engine).
`keep_result=0`: no result kept. arq has no batch call: `enqueue_job` one at a time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bench.peers import sink
from bench.peers.systems.base import Jobs, System

POLL_DELAY = 0.1
MAX_JOBS = 100


async def arq_job(ctx: dict[str, Any], name: str, due: float) -> None:
    sink.record(name, due)


class ArqRedis(System):
    name = "arq-redis"
    label = "arq (Redis)"
    store = "Redis"

    def config(self) -> dict[str, Any]:
        return {"port": self.env.redis.port, "db": self.env.redis_db}

    def _schedule(self, jobs: Jobs, batch: bool) -> None:
        asyncio.run(self._enqueue(jobs))

    async def _enqueue(self, jobs: Jobs) -> None:
        from arq import create_pool

        pool = await create_pool(_settings(self.config()))
        try:
            for name, due in jobs:
                await pool.enqueue_job(
                    "arq_job",
                    name,
                    due,
                    _job_id=name,
                    _defer_until=datetime.fromtimestamp(due, UTC),
                )
        finally:
            await pool.aclose()

    def cleanup(self) -> None:
        client = self.env.redis.client(db=self.env.redis_db)
        client.flushdb()
        client.close()


def _settings(cfg: dict[str, Any]) -> Any:
    from arq.connections import RedisSettings

    return RedisSettings(host="127.0.0.1", port=cfg["port"], database=cfg["db"])


def run_worker(cfg: dict[str, Any]) -> None:
    from arq.worker import Worker, func

    worker = Worker(
        functions=[func(arq_job, name="arq_job")],
        redis_settings=_settings(cfg),
        poll_delay=POLL_DELAY,
        max_jobs=MAX_JOBS,
        keep_result=0,
        handle_signals=True,
    )
    worker.run()
