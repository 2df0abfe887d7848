"""`/api/series`: recurring tasks as a whole, and `/api/me`: the user's time settings."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from duetime.api.task_wire import ProfileIO, SeriesOut
from duetime.api.tasks import Tasks, user_zone
from duetime.api.users import CurrentUser
from duetime.tasks.service import TaskNotFound


def series_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["series"])

    @router.get("/series/{series_id}")
    async def get_series(series_id: str, user: CurrentUser, tasks: Tasks) -> SeriesOut:
        """A recurring task's rule and every occurrence so far (done, skipped and open)."""
        try:
            found, occurrences = await tasks.series(user, series_id)
        except TaskNotFound:
            raise HTTPException(404, detail="series not found") from None
        return SeriesOut.of(found, occurrences, await user_zone(tasks, user, occurrences))

    @router.post("/series/{series_id}/stop")
    async def stop_series(series_id: str, user: CurrentUser, tasks: Tasks) -> SeriesOut:
        """No further occurrences; the open one stays as it is."""
        try:
            await tasks.stop_series(user, series_id)
            found, occurrences = await tasks.series(user, series_id)
        except TaskNotFound:
            raise HTTPException(404, detail="series not found") from None
        return SeriesOut.of(found, occurrences, await user_zone(tasks, user, occurrences))

    return router


def me_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["me"])

    @router.get("/me")
    async def get_me(user: CurrentUser, tasks: Tasks) -> ProfileIO:
        """Your default time zone and quiet hours."""
        return ProfileIO.of(await tasks.profile(user))

    @router.put("/me")
    async def put_me(body: ProfileIO, user: CurrentUser, tasks: Tasks) -> ProfileIO:
        """Set your time zone and quiet hours. Tasks whose due time you stated in local time
        without a timezone move with your zone; instants and tasks with their own timezone
        do not."""
        profile = body.to_profile(user)
        await tasks.set_profile(profile)
        return ProfileIO.of(profile)

    return router
