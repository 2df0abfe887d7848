"""The composition root: the one place that chooses and wires adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from duetime.auth import load_or_create_secret
from duetime.clock import SystemClock
from duetime.db.engine import create_engine
from duetime.jobs import Trigger
from duetime.jobs.app_channel import HttpAppChannel
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore
from duetime.settings import Settings
from duetime.tasks.model import REMINDER_JOB_PREFIX
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.service import MAINTENANCE_JOB, TaskService
from duetime.tasks.store import SqlTaskStore


@dataclass
class Runtime:
    """What a running duetime is made of; `close` releases it."""

    settings: Settings
    scheduler: EmbeddedJobScheduler
    tasks: TaskService
    task_store: SqlTaskStore
    relay: SchedulingRelay
    jwt_secret: str
    closers: list[HttpAppChannel] = field(default_factory=list)

    async def start(self) -> None:
        await self.scheduler.start()
        await self.relay.start()
        await self.tasks.schedule_maintenance(self.scheduler)

    async def close(self) -> None:
        await self.relay.stop()
        await self.scheduler.stop()
        await self.task_store.close()
        for closer in self.closers:
            await closer.aclose()


def bootstrap(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = SystemClock()
    engine = create_engine(settings.resolved_database_url())
    scheduler = EmbeddedJobScheduler(
        SqlJobStore(engine=engine),
        clock=clock,
        max_concurrency=settings.max_concurrency,
        window_size=settings.window_size,
    )
    store = SqlTaskStore(
        engine,
        misfire_grace_us=settings.misfire_grace // timedelta(microseconds=1),
        skip_missed=settings.misfire_policy == "missed",
    )
    relay = SchedulingRelay(store, scheduler)
    tasks = TaskService(store, relay, clock)
    retention = timedelta(days=settings.retention_days)

    async def maintenance(_: Trigger) -> None:
        await tasks.purge(retention)

    runtime = Runtime(settings, scheduler, tasks, store, relay, load_or_create_secret(settings))
    if settings.app_url:
        channel = HttpAppChannel(
            settings.app_url,
            token=settings.app_api_token,
            timeout=settings.app_timeout,
            max_connections=settings.max_concurrency,
        )
        scheduler.add_handler("", channel)
        runtime.closers.append(channel)
    scheduler.add_handler(REMINDER_JOB_PREFIX, tasks.on_reminder)
    scheduler.add_handler(MAINTENANCE_JOB, maintenance)
    return runtime
