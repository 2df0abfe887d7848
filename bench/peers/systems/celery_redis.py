"""Celery 5 with ETA tasks on a Redis broker.

Settings, from Celery's docs ("ETA and Countdown", "Redis: visibility timeout"): each job is
`apply_async(eta=due, task_id=id)`; the worker takes an ETA task from the queue at once and
holds it, unacknowledged, in memory until it is due, so `broker_transport_options
visibility_timeout` must exceed the longest ETA in use or Redis hands the task to a worker
again (a duplicate): 3,600 s here, the default, longer than every ETA in the bench except the
far-future jobs of the pending measure. `task_ignore_result` (no result backend),
`worker_prefetch_multiplier=4` (the default; ETA tasks do not count against it),
`--pool prefork --concurrency 2` (the default: one process per core), and
`--without-gossip --without-mingle --without-heartbeat` (one worker: nothing to talk to).
Celery has no batch call: `apply_async` one job at a time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench.peers import sink
from bench.peers.systems.base import Jobs, System, redis_url


def make_app(broker: str) -> Any:
    from celery import Celery

    app = Celery("bench_peers", broker=broker, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    app.task(name="bench_job")(_bench_job)
    return app


def _bench_job(name: str, due: float) -> None:
    sink.record(name, due)


class CeleryRedis(System):
    name = "celery-redis"
    label = "Celery (ETA, Redis)"
    store = "Redis"

    def config(self) -> dict[str, Any]:
        return {"broker": redis_url(self.env)}

    def setup(self) -> None:
        self.app = make_app(redis_url(self.env))
        self.task = self.app.tasks["bench_job"]

    def _schedule(self, jobs: Jobs, batch: bool) -> None:
        for name, due in jobs:
            self.task.apply_async(
                args=[name, due], eta=datetime.fromtimestamp(due, UTC), task_id=name
            )

    def settle(self, timeout: float) -> None:
        client = self.env.redis.client(db=self.env.redis_db)
        deadline = time.monotonic() + timeout
        while client.llen("celery") and time.monotonic() < deadline:
            time.sleep(0.2)
        client.close()

    def cleanup(self) -> None:
        client = self.env.redis.client(db=self.env.redis_db)
        client.flushdb()
        client.close()


def run_worker(cfg: dict[str, Any]) -> None:
    app = make_app(cfg["broker"])
    app.worker_main(
        argv=[
            "worker",
            "--loglevel=WARNING",
            "--pool=prefork",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
