"""The Jobs building block as an app sees it: names in the app's own scope.

Both the HTTP routes (`duetime.api.jobs`) and the gRPC server call this layer, so they
validate and answer alike. A public name is checked with Dapr's name rule, then keyed
`app||<namespace>||<app-id>||<name>` in the engine; what comes back carries the public
name again. An app never sees, creates, overwrites or deletes a key outside its scope:
duetime's own jobs (`duetime||…`) and other apps' jobs are out of reach by construction.
"""

from __future__ import annotations

from dataclasses import replace

from duetime.jobs.model import DeadLetter, Job, JobExistsError, JobNotFoundError, JobState
from duetime.jobs.names import check_job_name
from duetime.jobs.port import JobScheduler
from duetime.sidecar.apps import App


class SidecarJobs:
    """`JobScheduler`'s jobs and dead letters, scoped to the calling app."""

    def __init__(self, scheduler: JobScheduler) -> None:
        self._scheduler = scheduler

    async def schedule(self, app: App, job: Job, *, overwrite: bool = False) -> JobState:
        """As `JobScheduler.schedule`; raises `JobNameError` (a `ScheduleError`) for a name
        Dapr refuses, before anything is stored."""
        check_job_name(job.name)
        try:
            state = await self._scheduler.schedule(
                replace(job, name=app.scope + job.name), overwrite=overwrite
            )
        except JobExistsError:
            raise JobExistsError(job.name) from None  # the public name, not the key
        return _public(app, state)

    async def get(self, app: App, name: str) -> JobState | None:
        if not _addressable(name):
            return None
        state = await self._scheduler.get(app.scope + name)
        return None if state is None else _public(app, state)

    async def delete(self, app: App, name: str) -> bool:
        if not _addressable(name):
            return False
        return await self._scheduler.delete(app.scope + name)

    async def delete_prefix(self, app: App, prefix: str) -> int:
        if not _addressable(prefix):
            return 0
        return await self._scheduler.delete_prefix(app.scope + prefix)

    async def list_jobs(
        self, app: App, prefix: str = "", *, limit: int = 100, after: str = ""
    ) -> list[JobState]:
        """The app's jobs whose name starts with `prefix`, by name, names > `after`."""
        if not _addressable(prefix):
            return []
        # every key of the scope sorts after the bare scope, so "" means "from the start"
        states = await self._scheduler.list_jobs(
            app.scope + prefix, limit=limit, after=app.scope + after if after else ""
        )
        return [_public(app, s) for s in states]

    async def dead_letters(
        self, app: App, prefix: str = "", *, limit: int = 100, after: str = ""
    ) -> list[DeadLetter]:
        if not _addressable(prefix):
            return []
        letters = await self._scheduler.dead_letters(app.scope + prefix, limit=limit, after=after)
        return [replace(d, name=d.name[len(app.scope) :]) for d in letters]

    async def replay(self, app: App, dead_letter_id: str) -> None:
        """As `JobScheduler.replay`, for a dead letter of this app's jobs only (another's
        is `JobNotFoundError`)."""
        await self._own_dead_letter(app, dead_letter_id)
        await self._scheduler.replay(dead_letter_id)

    async def discard(self, app: App, dead_letter_id: str) -> bool:
        try:
            await self._own_dead_letter(app, dead_letter_id)
        except JobNotFoundError:
            return False
        return await self._scheduler.discard(dead_letter_id)

    async def _own_dead_letter(self, app: App, dead_letter_id: str) -> None:
        dead = await self._scheduler.dead_letter(dead_letter_id)
        if dead is None or not dead.name.startswith(app.scope):
            raise JobNotFoundError(f"no dead letter {dead_letter_id!r}")


def _addressable(name: str) -> bool:
    # a name with "|" could reach past the scope's end; Dapr refuses such names anyway
    return "|" not in name


def _public(app: App, state: JobState) -> JobState:
    return replace(state, job=replace(state.job, name=state.job.name[len(app.scope) :]))
