"""`/api/admin`: the operator's view of the jobs engine for the web app, for a signed-in
administrator (`is_admin`; `duetime users create --admin`). Everyone else gets 403.

The Dapr-shaped `/v1.0/jobs…` routes answer to the API token and see one app's scope;
these see the whole engine (duetime's own reminder jobs included) through the same
`JobScheduler`, every user's delivery dead letters through `DeliveryService`, and the
event log through its store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from duetime.api.cursors import decode_cursor, encode_cursor
from duetime.api.delivery import Deliveries
from duetime.api.delivery_wire import DeliveryOut, EventOut
from duetime.api.deps import SchedulerDep
from duetime.api.errors import describe_exception
from duetime.api.users import CurrentCaller
from duetime.delivery.service import DeliveryNotFound, ReplayConflict
from duetime.events.store import SqlEventStore
from duetime.jobs.model import JobNotFoundError, JobState
from duetime.timefmt import format_rfc3339

Limit = Annotated[int, Query(ge=1, le=500)]
Text = Annotated[str, Query(max_length=500)]


async def require_admin(caller: CurrentCaller) -> str:
    """The admin's user id; 403 for a session that is not an admin's and for bearer tokens
    (a token names a user, not an operator: operators use the API token on /v1.0)."""
    if caller.account is None or not caller.account.is_admin:
        raise HTTPException(403, detail="only an administrator may see the operator view")
    return caller.user_id


Admin = Annotated[str, Depends(require_admin)]


class AdminJob(BaseModel):
    name: str
    next_fire_at: str
    schedule: str | None
    due_time: str | None
    repeats: int | None
    attempt: int
    fired: int
    created_at: str

    @classmethod
    def of(cls, s: JobState) -> AdminJob:
        return cls(
            name=s.job.name,
            next_fire_at=format_rfc3339(s.next_fire_at),
            schedule=s.job.schedule,
            due_time=s.job.due_time,
            repeats=s.job.repeats,
            attempt=s.attempt,
            fired=s.fired,
            created_at=format_rfc3339(s.created_at),
        )


class AdminJobPage(BaseModel):
    jobs: list[AdminJob]
    next: str | None
    """Pass as `after` for the next page (jobs are ordered by name)."""


class AdminDeadLetter(BaseModel):
    id: str
    name: str
    data: Any
    scheduled_at: str
    failed_at: str
    attempts: int
    error: str


class AdminDeadLetterPage(BaseModel):
    dead_letters: list[AdminDeadLetter]
    next: str | None


class AdminDelivery(DeliveryOut):
    user_id: str


class AdminDeliveryPage(BaseModel):
    deliveries: list[AdminDelivery]
    next_cursor: str | None


class AdminEvent(EventOut):
    user_id: str


class AdminEventPage(BaseModel):
    events: list[AdminEvent]
    next: int | None
    """Pass as `before` for older events."""


def _events(request: Request) -> SqlEventStore:
    store: SqlEventStore = request.app.state.runtime.events
    return store


def admin_router() -> APIRouter:
    router = APIRouter(prefix="/api/admin", tags=["admin"])
    forbidden: dict[int | str, dict[str, Any]] = {403: {"description": "not an administrator"}}

    @router.get("/jobs", responses=forbidden)
    async def list_jobs(
        _admin: Admin,
        scheduler: SchedulerDep,
        prefix: Text = "",
        after: Text = "",
        limit: Limit = 100,
    ) -> AdminJobPage:
        """Every job of the engine whose name starts with `prefix`, by name, with its next
        fire time (a retry's, while one is pending)."""
        found = await scheduler.list_jobs(prefix, limit=limit + 1, after=after)
        page = found[:limit]
        return AdminJobPage(
            jobs=[AdminJob.of(s) for s in page],
            next=page[-1].job.name if len(found) > limit else None,
        )

    @router.get("/dead-letters", responses=forbidden)
    async def list_dead_letters(
        _admin: Admin, scheduler: SchedulerDep, after: Text = "", limit: Limit = 100
    ) -> AdminDeadLetterPage:
        """Triggers whose failure policy ran out, oldest first."""
        found = await scheduler.dead_letters("", limit=limit + 1, after=after)
        page = found[:limit]
        return AdminDeadLetterPage(
            dead_letters=[
                AdminDeadLetter(
                    id=d.id,
                    name=d.name,
                    data=d.data,
                    scheduled_at=format_rfc3339(d.scheduled_at),
                    failed_at=format_rfc3339(d.failed_at),
                    attempts=d.attempts,
                    error=d.error,
                )
                for d in page
            ],
            next=page[-1].id if len(found) > limit else None,
        )

    @router.post(
        "/dead-letters/{dead_letter_id}/replay",
        responses={**forbidden, 404: {}, 502: {"description": "the handler failed again"}},
    )
    async def replay(dead_letter_id: str, _admin: Admin, scheduler: SchedulerDep) -> Response:
        """Deliver the dead letter's trigger once more, now: 204 and it is gone; 502 when
        the handler failed again (it stays, with the new error)."""
        try:
            await scheduler.replay(dead_letter_id)
        except JobNotFoundError:
            raise HTTPException(404, detail="dead letter not found") from None
        except Exception as exc:
            raise HTTPException(
                502, detail=f"the handler failed again: {describe_exception(exc)}"
            ) from None
        return Response(status_code=204)

    @router.delete("/dead-letters/{dead_letter_id}", status_code=204, responses=forbidden)
    async def discard(dead_letter_id: str, _admin: Admin, scheduler: SchedulerDep) -> Response:
        """Delete a dead letter."""
        if not await scheduler.discard(dead_letter_id):
            raise HTTPException(404, detail="dead letter not found")
        return Response(status_code=204)

    @router.get("/delivery-dead-letters", responses=forbidden)
    async def delivery_dead_letters(
        _admin: Admin, delivery: Deliveries, limit: Limit = 50, cursor: str | None = None
    ) -> AdminDeliveryPage:
        """Every user's deliveries (webhook, email, push) that ran out of attempts."""
        found = await delivery.deliveries(
            None, state="dead", after=decode_cursor("d", cursor), limit=limit + 1
        )
        page = found[:limit]
        next_cursor = None
        if len(found) > limit:
            next_cursor = encode_cursor("d", page[-1][0].created_us, page[-1][0].id)
        return AdminDeliveryPage(
            deliveries=[
                AdminDelivery(**DeliveryOut.of(d, a).model_dump(), user_id=d.user_id)
                for d, a in page
            ],
            next_cursor=next_cursor,
        )

    @router.post(
        "/delivery-dead-letters/{delivery_id}/replay",
        status_code=202,
        responses={**forbidden, 404: {}, 409: {}},
    )
    async def replay_delivery(
        delivery_id: str, _admin: Admin, delivery: Deliveries, user: Text
    ) -> DeliveryOut:
        """Send a user's dead delivery once more (`user` is its `user_id`)."""
        try:
            found, attempts = await delivery.replay(user, delivery_id)
        except DeliveryNotFound:
            raise HTTPException(404, detail="dead letter not found") from None
        except ReplayConflict as exc:
            raise HTTPException(409, detail=str(exc)) from None
        return DeliveryOut.of(found, attempts)

    @router.get("/events", responses=forbidden)
    async def events(
        request: Request,
        _admin: Admin,
        before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
        limit: Limit = 100,
    ) -> AdminEventPage:
        """The event log of every user, newest first."""
        found = await _events(request).recent(before=before, limit=limit)
        return AdminEventPage(
            events=[
                AdminEvent(seq=e.seq, topic=e.topic, event=e.body, user_id=e.user_id) for e in found
            ],
            next=found[-1].seq if len(found) == limit else None,
        )

    return router
