"""The composition root: the one place that chooses and wires adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

from duetime.jobs.app_channel import HttpAppChannel
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore
from duetime.settings import Settings


@dataclass
class Runtime:
    """What a running duetime is made of; `close` releases it."""

    settings: Settings
    scheduler: EmbeddedJobScheduler
    _closers: list[HttpAppChannel] = field(default_factory=list)

    async def start(self) -> None:
        await self.scheduler.start()

    async def close(self) -> None:
        await self.scheduler.stop()
        for closer in self._closers:
            await closer.aclose()


def bootstrap(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlJobStore(settings.resolved_database_url())
    scheduler = EmbeddedJobScheduler(
        store, max_concurrency=settings.max_concurrency, window_size=settings.window_size
    )
    runtime = Runtime(settings, scheduler)
    if settings.app_url:
        channel = HttpAppChannel(
            settings.app_url,
            token=settings.app_api_token,
            timeout=settings.app_timeout,
            max_connections=settings.max_concurrency,
        )
        scheduler.add_handler("", channel)
        runtime._closers.append(channel)
    return runtime
