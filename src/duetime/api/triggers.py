"""`POST /job/{name}`: the endpoint a Dapr sidecar calls on its app when a job fires.

With it, duetime can sit behind a real Dapr sidecar (the Dapr backend) and hand the
sidecar's triggers to the handlers registered on the scheduler.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Response

from duetime.api.auth import require_app_token
from duetime.api.deps import BodyDep, TriggerSinkDep, parse_json
from duetime.api.errors import HANDLER_FAILED, NO_HANDLER, ApiError, responses

log = logging.getLogger(__name__)


async def trigger_job(name: str, raw: BodyDep, sink: TriggerSinkDep) -> Response:
    """Deliver one trigger of job `name` to the handler that owns the name.

    The body is the job's data as JSON, exactly as daprd sends it (an empty body means no
    data). When `app_api_token` is set, the `dapr-api-token` header must carry it.

    200 delivered · 404 `DUETIME_NO_HANDLER` when no handler owns the name, which Dapr
    takes as "not mine" and does not retry · 500 `DUETIME_HANDLER_FAILED` when the handler
    raised, so Dapr applies the job's failure policy · 400 the body is not JSON · 401 ·
    413 body over 4 MiB.
    """
    data = parse_json(raw) if raw else None
    try:
        delivered = await sink.receive(name, data)
    except Exception:
        log.exception("handler for job %r failed", name)
        raise ApiError(500, HANDLER_FAILED, f"the handler for job {name!r} failed") from None
    if not delivered:
        raise ApiError(404, NO_HANDLER, f"no handler for job {name!r}")
    return Response(status_code=200)


def trigger_router() -> APIRouter:
    router = APIRouter(dependencies=[Depends(require_app_token)], tags=["triggers (from Dapr)"])
    router.add_api_route(
        "/job/{name}",
        trigger_job,
        methods=["POST"],
        status_code=200,
        response_class=Response,
        responses=responses(400, 401, 404, 413, 500),
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": {"description": "The job's data."}}},
            }
        },
    )
    return router
