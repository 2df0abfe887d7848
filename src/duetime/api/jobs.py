"""The jobs API: Dapr's `/v1.0/jobs/{name}` (and `/v1.0-alpha1/`), plus duetime's job list
and dead letters.

The Dapr routes answer as daprd v1.18.3 does (`pkg/api/http/jobs.go`,
`pkg/api/universal/jobs.go`), except where daprd answers 500 for a client's mistake: an
invalid job is a 400 and a missing job a 404 here. Bodies are in `duetime.api.wire`.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from duetime.api import wire
from duetime.api.auth import CallerApp
from duetime.api.deps import BodyDep, JobsDep, parse_json
from duetime.api.errors import (
    DEAD_LETTER_NOT_FOUND,
    GET_JOB,
    JOB_NAME,
    JOB_NAME_EMPTY,
    REPLAY_FAILED,
    SCHEDULE_EMPTY,
    SCHEDULE_JOB,
    ApiError,
    describe_exception,
    describe_validation_errors,
    json_kind,
    malformed,
    responses,
)
from duetime.jobs.model import Job, JobExistsError, JobNotFoundError
from duetime.jobs.names import JobNameError, check_job_name
from duetime.jobs.schedule import ScheduleEmptyError, ScheduleError

log = logging.getLogger(__name__)

Limit = Annotated[int, Query(ge=1, le=1000, description="Page size, 1 to 1000.")]
Prefix = Annotated[str, Query(description="Only names starting with this.")]


def _decode(raw: bytes) -> wire.ScheduleJobBody:
    if not raw:
        return wire.ScheduleJobBody()
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise malformed(f"the body must be a JSON object, got {json_kind(value)}")
    try:
        return wire.ScheduleJobBody.model_validate(value)
    except ValidationError as exc:
        raise malformed(describe_validation_errors(exc.errors())) from None


def _json(model: BaseModel) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json", by_alias=True, exclude_unset=True))


async def schedule_job(name: str, app: CallerApp, jobs: JobsDep, raw: BodyDep) -> Response:
    """Schedule a job, as Dapr's `POST /v1.0/jobs/{name}`.

    Body keys in camelCase or snake_case; unknown keys are ignored; the name goes only in
    the URL (a non-empty `name` key is a 400 `DAPR_SCHEDULER_JOB_NAME`), and surrounding
    spaces are trimmed from it, as daprd does. `failurePolicy.constant.interval` is a
    protobuf duration: seconds with an `s` suffix (`"5s"`, `"0.5s"`); without `maxRetries`
    a failing trigger is retried forever.

    204 scheduled · 400 `ERR_MALFORMED_REQUEST` (not JSON, wrong types),
    `DAPR_SCHEDULER_SCHEDULE_EMPTY` (no schedule and no dueTime) or
    `DAPR_SCHEDULER_SCHEDULE_JOB` (invalid cron, zone, duration, ttl, repeats or name;
    daprd says 500) · 409 the name exists and `overwrite` is not true · 413 body over 4 MiB.
    """
    body = _decode(raw)
    if body.name:
        raise ApiError(400, JOB_NAME, "Set the job name in the url only")
    name = name.strip()
    if not name:
        raise ApiError(400, JOB_NAME_EMPTY, "Name is empty")
    if "|" in name:  # daprd refuses this before it looks at the schedule
        try:
            check_job_name(name)
        except JobNameError as exc:
            raise ApiError(400, exc.dapr_code, f"failed to schedule job due to: {exc}") from None
    if body.schedule is None and body.dueTime is None:
        raise ApiError(400, SCHEDULE_EMPTY, "Schedule is empty")
    job = Job(
        name=name,
        schedule=body.schedule,
        due_time=body.dueTime,
        repeats=body.repeats,
        ttl=body.ttl,
        data=body.data,
        failure_policy=None if body.failurePolicy is None else body.failurePolicy.domain(),
    )
    try:
        await jobs.schedule(app, job, overwrite=bool(body.overwrite))
    except JobNameError as exc:  # a '|' is daprd's DAPR_SCHEDULER_JOB_NAME_EMPTY
        raise ApiError(400, exc.dapr_code, f"failed to schedule job due to: {exc}") from None
    except ScheduleEmptyError:
        raise ApiError(400, SCHEDULE_EMPTY, "Schedule is empty") from None
    except ScheduleError as exc:
        raise ApiError(400, SCHEDULE_JOB, f"failed to schedule job due to: {exc}") from None
    except JobExistsError as exc:
        raise ApiError(409, SCHEDULE_JOB, f"failed to schedule job due to: {exc}") from None
    return Response(status_code=204)


async def get_job(name: str, app: CallerApp, jobs: JobsDep) -> JSONResponse:
    """Get a job, as Dapr's `GET /v1.0/jobs/{name}`: its fields as sent (dueTime and ttl
    unchanged), `data` wrapped as a `google.protobuf.Value` Any, and the failure policy in
    effect (Dapr's default, constant 1s with 3 retries, when none was set).

    200 · 404 `DAPR_SCHEDULER_GET_JOB` when there is no such job (daprd says 500).
    """
    state = await jobs.get(app, name)
    if state is None:
        raise ApiError(404, GET_JOB, f"failed to get job due to: job not found: {name}")
    return _json(wire.JobOut.of(state.job))


async def delete_job(name: str, app: CallerApp, jobs: JobsDep) -> Response:
    """Delete a job, as Dapr's `DELETE /v1.0/jobs/{name}`. 204, also when there was none;
    a trigger already running finishes."""
    await jobs.delete(app, name)
    return Response(status_code=204)


async def list_jobs(
    app: CallerApp, jobs: JobsDep, prefix: Prefix = "", limit: Limit = 100, after: str = ""
) -> JSONResponse:
    """duetime addition (daprd has no HTTP list): jobs ordered by name, each as `GET
    /v1.0/jobs/{name}` shows it plus `nextFireTime` (RFC3339 UTC; a retry's time while one
    is pending), `attempt` (failed attempts of the pending trigger), `fired` (triggers
    delivered or given up on) and, once the app has answered a trigger 404, `appNotFound`
    (`count`, `last`). `next` is the `after` value for the next page, or null on the last
    page. 400 for a limit outside 1..1000."""
    states = await jobs.list_jobs(app, prefix, limit=limit + 1, after=after)
    page = states[:limit]
    more = len(states) > limit
    return _json(
        wire.JobPage(
            jobs=[wire.ListedJob.of_state(s) for s in page],
            next=page[-1].job.name if more else None,
        )
    )


async def list_dead_letters(
    app: CallerApp, jobs: JobsDep, prefix: Prefix = "", limit: Limit = 100, after: str = ""
) -> JSONResponse:
    """duetime addition: triggers whose failure policy ran out (Dapr drops them), oldest
    first, for jobs whose name starts with `prefix`. `next` is the `after` value for the
    next page, or null. 400 for a limit outside 1..1000."""
    letters = await jobs.dead_letters(app, prefix, limit=limit + 1, after=after)
    page = letters[:limit]
    more = len(letters) > limit
    return _json(
        wire.DeadLetterPage(
            deadLetters=[wire.DeadLetterOut.of(d) for d in page],
            next=page[-1].id if more else None,
        )
    )


async def replay_dead_letter(dead_letter_id: str, app: CallerApp, jobs: JobsDep) -> JSONResponse:
    """duetime addition: deliver a dead letter's trigger once more, now, to the handler
    that owns its job name.

    200 `{"delivered": true}`, and the dead letter is gone · 502 `DUETIME_REPLAY_FAILED`
    when the handler failed again (the dead letter stays, with the new error and attempt
    count) · 404 `DUETIME_DEAD_LETTER_NOT_FOUND`.
    """
    try:
        await jobs.replay(app, dead_letter_id)
    except JobNotFoundError:
        raise _dead_letter_not_found(dead_letter_id) from None
    except Exception as exc:
        log.warning("replay of dead letter %s failed: %s", dead_letter_id, exc)
        message = f"the handler failed again: {describe_exception(exc)}"
        raise ApiError(502, REPLAY_FAILED, message) from None
    return _json(wire.ReplayResult(delivered=True))


async def discard_dead_letter(dead_letter_id: str, app: CallerApp, jobs: JobsDep) -> Response:
    """duetime addition: delete a dead letter. 204 · 404 `DUETIME_DEAD_LETTER_NOT_FOUND`."""
    if not await jobs.discard(app, dead_letter_id):
        raise _dead_letter_not_found(dead_letter_id)
    return Response(status_code=204)


def _dead_letter_not_found(dead_letter_id: str) -> ApiError:
    return ApiError(404, DEAD_LETTER_NOT_FOUND, f"no dead letter {dead_letter_id!r}")


def jobs_router() -> APIRouter:
    """Dapr's jobs routes under `/v1.0` and the deprecated `/v1.0-alpha1`, and duetime's
    list and dead-letter routes; all behind `require_api_token`."""
    router = APIRouter(responses=responses(401, 403))
    for version, deprecated in (("v1.0", False), ("v1.0-alpha1", True)):
        path = f"/{version}/jobs/{{name}}"
        tags: list[str | Enum] = ["jobs (Dapr API)"]
        router.add_api_route(
            path,
            schedule_job,
            methods=["POST"],
            status_code=204,
            response_class=Response,
            name=f"schedule_job_{version}",
            openapi_extra=wire.SCHEDULE_JOB_OPENAPI,
            responses=responses(400, 409, 413),
            tags=tags,
            deprecated=deprecated,
        )
        router.add_api_route(
            path,
            get_job,
            methods=["GET"],
            response_model=wire.JobOut,
            name=f"get_job_{version}",
            responses=responses(404),
            tags=tags,
            deprecated=deprecated,
        )
        router.add_api_route(
            path,
            delete_job,
            methods=["DELETE"],
            status_code=204,
            response_class=Response,
            name=f"delete_job_{version}",
            tags=tags,
            deprecated=deprecated,
        )
    router.add_api_route(
        "/v1.0/jobs",
        list_jobs,
        methods=["GET"],
        response_model=wire.JobPage,
        tags=["jobs (duetime)"],
        responses=responses(400),
    )
    router.add_api_route(
        "/v1.0/deadletters",
        list_dead_letters,
        methods=["GET"],
        response_model=wire.DeadLetterPage,
        tags=["dead letters (duetime)"],
        responses=responses(400),
    )
    router.add_api_route(
        "/v1.0/deadletters/{dead_letter_id}/replay",
        replay_dead_letter,
        methods=["POST"],
        response_model=wire.ReplayResult,
        tags=["dead letters (duetime)"],
        responses=responses(404, 502),
    )
    router.add_api_route(
        "/v1.0/deadletters/{dead_letter_id}",
        discard_dead_letter,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        tags=["dead letters (duetime)"],
        responses=responses(404),
    )
    return router
