"""RQ with its built-in scheduler: `Queue.enqueue_at`, a worker started `with_scheduler`.

The scheduler is a process the worker forks; it moves due jobs from the scheduled registry to
the queue every `interval` seconds, 1 s, fixed (the worker does not pass another), so a job
starts up to a second after its due time by design. `SimpleWorker` runs each job in the
worker's own process (RQ's default `Worker` forks a child per job: more isolation, a fork's
cost per job). `result_ttl=0`: no result kept. Batches are `enqueue_at` calls in one Redis
pipeline (1,000 a pipeline), the way RQ's docs batch enqueues.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.peers import sink
from bench.peers.systems.base import Jobs, System

QUEUE = "bench"


def rq_job(name: str, due: float) -> None:
    sink.record(name, due)


class RqRedis(System):
    name = "rq-redis"
    label = "RQ (scheduler, Redis)"
    store = "Redis"
    batch = True

    def config(self) -> dict[str, Any]:
        return {"port": self.env.redis.port, "db": self.env.redis_db}

    def setup(self) -> None:
        from rq import Queue

        self.client = self.env.redis.client(db=self.env.redis_db)
        self.queue = Queue(QUEUE, connection=self.client)

    def _schedule(self, jobs: Jobs, batch: bool) -> None:
        if not batch:
            for name, due in jobs:
                self._one(name, due, None)
            return
        for n in range(0, len(jobs), 1000):
            with self.client.pipeline() as pipe:
                for name, due in jobs[n : n + 1000]:
                    self._one(name, due, pipe)
                pipe.execute()

    def _one(self, name: str, due: float, pipe: Any) -> None:
        self.queue.enqueue_at(
            datetime.fromtimestamp(due, UTC),
            rq_job,
            name,
            due,
            job_id=name,
            result_ttl=0,
            pipeline=pipe,
        )

    def cleanup(self) -> None:
        self.client.flushdb()
        self.client.close()


def run_worker(cfg: dict[str, Any]) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker

    connection = Redis(host="127.0.0.1", port=cfg["port"], db=cfg["db"])
    worker = SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection)
    worker.work(with_scheduler=True, logging_level="WARNING")
