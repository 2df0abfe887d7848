"""`POST /api/recurrence/preview`: the next occurrences of a rule that is not saved yet.

The web app's edit dialog asks it while the user types a rule. The same code as a saved
series decides (`duetime.tasks.series.check` and `duetime.tasks.recurrence.upcoming`), so
the preview is what the series will do, DST policy included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from duetime.api.errors import unprocessable
from duetime.api.task_wire import _Strict, parse_due, zone
from duetime.api.tasks import Tasks
from duetime.api.users import CurrentUser
from duetime.tasks import recurrence, series
from duetime.tasks.model import TaskRuleError


class PreviewIn(_Strict):
    """A rule as the task API takes it, from a first due time in a time zone."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "recurrence": "FREQ=WEEKLY;BYDAY=MO",
                    "due_at": "2026-03-02T09:00:00",
                    "timezone": "America/New_York",
                    "count": 3,
                }
            ]
        }
    )

    recurrence: Annotated[str, StringConstraints(max_length=500)]
    due_at: str
    timezone: str | None = None
    count: Annotated[int, Field(ge=1, le=100)] = 5

    @field_validator("recurrence")
    @classmethod
    def _rule(cls, value: str) -> str:
        return recurrence.normalize(value)

    @field_validator("due_at")
    @classmethod
    def _due(cls, value: str) -> str:
        parse_due(value, None)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


class PreviewOut(BaseModel):
    recurrence: str
    """The rule normalized, as a series would store it."""
    timezone: str
    first: str
    """The first due time (RFC3339 with the zone's offset)."""
    due_at: list[str]
    """The next `count` due times after the first, RFC3339 with the zone's offset."""


def _with_offset(wall: datetime, where: ZoneInfo) -> str:
    return recurrence.to_instant(wall, where).astimezone(where).isoformat(timespec="seconds")


def _field_error(field: str, message: str) -> JSONResponse:
    return unprocessable(message, [{"loc": ("body", field), "msg": message}])


def recurrence_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["series"])

    @router.post(
        "/recurrence/preview",
        response_model=PreviewOut,
        responses={422: {"description": "a bad rule, due time or time zone, by field"}},
    )
    async def preview(
        body: PreviewIn, user: CurrentUser, tasks: Tasks
    ) -> PreviewOut | JSONResponse:
        """The next due times of a rule for a series starting at `due_at` (a wall time in
        `timezone`, your zone when omitted, or an instant), as a saved series would have
        them; nothing is stored."""
        name = body.timezone or (await tasks.profile(user)).timezone or "UTC"
        where = zone(name)
        given = parse_due(body.due_at, None)
        assert given is not None
        try:
            start = (
                given.replace(microsecond=0)
                if given.tzinfo is None
                else recurrence.to_wall(given, where).replace(microsecond=0)
            )
            _with_offset(start, where)
        except OverflowError:
            return _field_error("due_at", f"due_at {body.due_at!r} is outside the calendar")
        try:
            rule = series.check(body.recurrence, None, start, where)
        except TaskRuleError as exc:
            return _field_error("recurrence", str(exc))
        assert rule is not None
        try:
            walls = recurrence.upcoming(rule, start, where, start, 1, body.count)
            return PreviewOut(
                recurrence=rule,
                timezone=name,
                first=_with_offset(start, where),
                due_at=[_with_offset(w, where) for w in walls],
            )
        except OverflowError:
            return _field_error("due_at", f"due_at {body.due_at!r} is too near the calendar's end")

    return router
