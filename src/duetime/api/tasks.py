"""The task API: `/api/tasks` and `/api/notifications`, per user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from pydantic import ValidationError

from duetime.api.cursors import decode_cursor as _decode_cursor
from duetime.api.cursors import encode_cursor as _encode_cursor
from duetime.api.task_wire import (
    BatchIn,
    BatchOut,
    NotificationOut,
    NotificationPage,
    OccurrencesOut,
    ReminderOut,
    SnoozeIn,
    TaskIn,
    TaskOut,
    TaskPage,
    TaskPatch,
    needs_user_zone,
    parse_instant_field,
)
from duetime.api.users import CurrentUser
from duetime.tasks.model import Reminder, Task, TaskRuleError
from duetime.tasks.service import (
    TaskBusy,
    TaskConflict,
    TaskNotFound,
    TaskService,
    VersionMismatch,
)
from duetime.tasks.store import TaskQuery
from duetime.timefmt import format_rfc3339, to_micros


async def get_tasks(request: Request) -> TaskService:
    service: TaskService = request.app.state.tasks
    return service


Tasks = Annotated[TaskService, Depends(get_tasks)]
Limit = Annotated[int, Query(ge=1, le=500)]
Scope = Annotated[
    Literal["occurrence", "series"],
    Query(description="On a recurring task: change this occurrence only, or the series too"),
]


def _invalid(exc: ValueError) -> HTTPException:
    if isinstance(exc, ValidationError):
        return HTTPException(422, detail="; ".join(e["msg"] for e in exc.errors()))
    return HTTPException(422, detail=str(exc))


def _not_found(what: str = "task") -> HTTPException:
    return HTTPException(404, detail=f"{what} not found")


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().strip('"').removeprefix('W/"').strip('"')
    if not text.isdigit():
        raise HTTPException(400, detail=f"If-Match {if_match!r} must be a task version number")
    return int(text)


async def user_zone(tasks: TaskService, user: str, found: list[Task]) -> str | None:
    """The user's time zone, read only when a task shown follows it."""
    return (await tasks.profile(user)).timezone if needs_user_zone(found) else None


async def shown(tasks: TaskService, user: str, found: list[Task]) -> list[TaskOut]:
    zone = await user_zone(tasks, user, found)
    return [TaskOut.of(t, zone) for t in found]


def task_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["tasks"])

    @router.post("/tasks", status_code=201)
    async def create_task(body: TaskIn, user: CurrentUser, tasks: Tasks) -> TaskOut:
        """Create a task; its reminders are scheduled (by default one at the due time)."""
        try:
            created, _ = await tasks.create(user, [body.to_input()])
        except ValueError as exc:
            raise _invalid(exc) from None
        return (await shown(tasks, user, created))[0]

    @router.post("/tasks/batch", status_code=201)
    async def create_batch(body: BatchIn, user: CurrentUser, tasks: Tasks) -> BatchOut:
        """Create up to 10,000 tasks at once: all are validated before any is written."""
        inputs = []
        for index, item in enumerate(body.tasks):
            try:
                inputs.append(item.to_input())
            except ValueError as exc:
                raise HTTPException(422, detail=f"tasks[{index}]: {exc}") from None
        try:
            created, scheduled = await tasks.create(user, inputs, batch=True)
        except TaskRuleError as exc:
            raise _invalid(exc) from None
        return BatchOut(tasks=await shown(tasks, user, created), scheduled_reminders=scheduled)

    @router.get("/tasks")
    async def list_tasks(
        user: CurrentUser,
        tasks: Tasks,
        status: Literal["open", "done", "skipped"] | None = None,
        series_id: Annotated[str | None, Query(max_length=64)] = None,
        due_before: str | None = None,
        due_after: str | None = None,
        tag: str | None = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        sort: Literal["due_at", "-due_at", "created_at", "-created_at"] = "created_at",
        limit: Limit = 50,
        cursor: str | None = None,
    ) -> TaskPage:
        """Your tasks, filtered and sorted (tasks without a due time sort last by due_at),
        a page at a time: pass `next_cursor` back as `cursor`."""
        try:
            before = None if due_before is None else parse_instant_field("due_before", due_before)
            after = None if due_after is None else parse_instant_field("due_after", due_after)
        except ValueError as exc:
            raise _invalid(exc) from None
        query = TaskQuery(
            status=status,
            series_id=series_id,
            due_before=None if before is None else to_micros(before),
            due_after=None if after is None else to_micros(after),
            tag=tag,
            text=q,
            sort=sort,
            after=_decode_cursor(sort, cursor),
            limit=limit + 1,
        )
        found = await tasks.find(user, query)
        page, more = found[:limit], len(found) > limit
        next_cursor = None
        if more:
            last = page[-1]
            if sort.endswith("due_at"):
                value = to_micros(last.due_at) if last.due_at else 2**62
            else:
                value = to_micros(last.created_at)
            next_cursor = _encode_cursor(sort, value, last.id)
        return TaskPage(tasks=await shown(tasks, user, page), next_cursor=next_cursor)

    @router.get("/tasks/{task_id}")
    async def get_task(task_id: str, user: CurrentUser, tasks: Tasks) -> TaskOut:
        try:
            found = await tasks.get(user, task_id)
        except TaskNotFound:
            raise _not_found() from None
        return (await shown(tasks, user, [found]))[0]

    async def _update(
        tasks: TaskService,
        user: str,
        task_id: str,
        changes: Any,
        if_match: str | None,
        scope: str = "occurrence",
    ) -> TaskOut:
        try:
            task = await tasks.update(
                user,
                task_id,
                changes,
                if_version=_version(if_match),
                whole_series=scope == "series",
            )
        except TaskNotFound:
            raise _not_found() from None
        except VersionMismatch as exc:
            raise HTTPException(412, detail=f"{exc}; reload it and retry") from None
        except (TaskBusy, TaskConflict) as exc:
            raise HTTPException(409, detail=str(exc)) from None
        except ValueError as exc:
            raise _invalid(exc) from None
        return (await shown(tasks, user, [task]))[0]

    @router.patch("/tasks/{task_id}")
    async def patch_task(
        task_id: str,
        body: TaskPatch,
        user: CurrentUser,
        tasks: Tasks,
        if_match: Annotated[str | None, Header()] = None,
        scope: Scope = "occurrence",
    ) -> TaskOut:
        """Change the fields given. Reminders are rescheduled only when `due_at` or
        `reminders` change. `If-Match: <version>` makes the change conditional (412). On a
        recurring task, `?scope=series` changes the series' later occurrences too."""
        try:
            current = await tasks.get(user, task_id)
            changes = body.changes(current)
        except TaskNotFound:
            raise _not_found() from None
        except ValueError as exc:
            raise _invalid(exc) from None
        return await _update(tasks, user, task_id, changes, if_match, scope)

    @router.put("/tasks/{task_id}")
    async def put_task(
        task_id: str,
        body: TaskIn,
        user: CurrentUser,
        tasks: Tasks,
        if_match: Annotated[str | None, Header()] = None,
        scope: Scope = "occurrence",
    ) -> TaskOut:
        """Replace the task's fields (omitted ones take their defaults; an omitted
        `recurrence` or `repeat_after` leaves the series as it is)."""
        try:
            inp = body.to_input()
        except ValueError as exc:
            raise _invalid(exc) from None
        changes = {k: getattr(inp, k) for k in inp.__dataclass_fields__}
        for name in ("recurrence", "repeat_after"):
            if name not in body.model_fields_set:
                del changes[name]
        return await _update(tasks, user, task_id, changes, if_match, scope)

    @router.delete("/tasks/{task_id}", status_code=204)
    async def delete_task(task_id: str, user: CurrentUser, tasks: Tasks) -> Response:
        """Delete the task and cancel its reminders."""
        try:
            await tasks.delete(user, task_id)
        except TaskNotFound:
            raise _not_found() from None
        return Response(status_code=204)

    @router.post("/tasks/{task_id}/complete")
    async def complete_task(task_id: str, user: CurrentUser, tasks: Tasks) -> TaskOut:
        """Mark done; pending reminders are cancelled (state `skipped`). On a recurring task
        this creates the next occurrence, with its reminders scheduled."""
        return await _update(tasks, user, task_id, {"status": "done"}, None)

    @router.post("/tasks/{task_id}/skip")
    async def skip_task(task_id: str, user: CurrentUser, tasks: Tasks) -> TaskOut:
        """Skip this occurrence of a recurring task (status `skipped`): its reminders are
        cancelled and the next occurrence is created."""
        return await _update(tasks, user, task_id, {"status": "skipped"}, None)

    @router.get("/tasks/{task_id}/occurrences")
    async def task_occurrences(
        task_id: str,
        user: CurrentUser,
        tasks: Tasks,
        count: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> OccurrencesOut:
        """The next due times of a recurring task after this occurrence (none for a task
        that repeats after completion, or is not recurring)."""
        try:
            found = await tasks.occurrences(user, task_id, count)
        except TaskNotFound:
            raise _not_found() from None
        return OccurrencesOut(due_at=[format_rfc3339(d) for d in found])

    @router.post("/tasks/{task_id}/reopen")
    async def reopen_task(task_id: str, user: CurrentUser, tasks: Tasks) -> TaskOut:
        """Mark open again; reminders still in the future are scheduled again."""
        return await _update(tasks, user, task_id, {"status": "open"}, None)

    @router.get("/notifications")
    async def list_notifications(
        user: CurrentUser,
        tasks: Tasks,
        unread: bool = False,
        limit: Limit = 50,
        cursor: str | None = None,
    ) -> NotificationPage:
        """Your inbox, newest first."""
        found = await tasks.notifications(
            user, unread=unread, after=_decode_cursor("n", cursor), limit=limit + 1
        )
        page, more = found[:limit], len(found) > limit
        next_cursor = _encode_cursor("n", page[-1].fired_us, page[-1].id) if more else None
        return NotificationPage(
            notifications=[NotificationOut.of(n) for n in page], next_cursor=next_cursor
        )

    @router.post("/notifications/{notification_id}/read")
    async def read_notification(
        notification_id: str, user: CurrentUser, tasks: Tasks
    ) -> NotificationOut:
        try:
            return NotificationOut.of(await tasks.mark_read(user, notification_id))
        except TaskNotFound:
            raise _not_found("notification") from None

    @router.post("/notifications/{notification_id}/snooze", status_code=201)
    async def snooze_notification(
        notification_id: str, body: SnoozeIn, user: CurrentUser, tasks: Tasks
    ) -> ReminderOut:
        """Remind me again: a one-off reminder on the notification's task, delivered once."""
        return await _snooze(tasks.snooze, user, notification_id, body, tasks.now(), "notification")

    @router.post("/tasks/{task_id}/snooze", status_code=201)
    async def snooze_task(
        task_id: str, body: SnoozeIn, user: CurrentUser, tasks: Tasks
    ) -> ReminderOut:
        """Remind me about this task at another time: a one-off reminder, delivered once."""
        return await _snooze(tasks.snooze_task, user, task_id, body, tasks.now(), "task")

    return router


async def _snooze(
    snooze: Callable[..., Awaitable[Reminder]],
    user: str,
    target_id: str,
    body: SnoozeIn,
    now: datetime,
    what: str,
) -> ReminderOut:
    try:
        return ReminderOut.of(await snooze(user, target_id, body.target(now), urgent=body.urgent))
    except TaskNotFound:
        raise _not_found(what) from None
    except (TaskConflict, TaskBusy) as exc:
        raise HTTPException(409, detail=str(exc)) from None
    except ValueError as exc:
        raise _invalid(exc) from None
