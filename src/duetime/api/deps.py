"""What the routers take from the app: the scheduler, the trigger sink, settings, the clock,
and the request body read under Dapr's size limit."""

from __future__ import annotations

import json
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from duetime.api.errors import BODY_READ, ApiError, malformed
from duetime.clock import Clock, SystemClock
from duetime.jobs.model import JSON
from duetime.jobs.port import JobScheduler
from duetime.sidecar.jobs import SidecarJobs

MAX_BODY_BYTES = 4 << 20
"""daprd's default `--max-body-size` (4Mi)."""

MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects accepted in a body. Python's JSON codec recurses,
so without a bound a deep enough value would fail with a 500 later, when it is stored."""


class TriggerSink(Protocol):
    """Where `POST /job/{name}` hands a trigger: `DirectTriggers` on the embedded engine,
    `DaprJobScheduler` on the Dapr backend."""

    async def receive(self, name: str, data: JSON) -> bool:
        """Settle one trigger of job `name`; False if no handler owns the name. Raises when
        the sender should retry."""
        ...


class TokenSettings(Protocol):
    @property
    def api_token(self) -> str | None: ...

    @property
    def app_api_token(self) -> str | None: ...


async def get_scheduler(request: Request) -> JobScheduler:
    scheduler: JobScheduler = request.app.state.scheduler
    return scheduler


async def get_jobs(request: Request) -> SidecarJobs:
    jobs: SidecarJobs = request.app.state.jobs
    return jobs


async def get_trigger_sink(request: Request) -> TriggerSink:
    sink: TriggerSink = request.app.state.trigger_sink
    return sink


async def get_settings(request: Request) -> TokenSettings:
    settings: TokenSettings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock | None = getattr(request.app.state, "clock", None)
    return clock or SystemClock()


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 past `MAX_BODY_BYTES` whether the client announced
    its length or not (daprd answers 400 `ERR_BODY_READ` "stream too large")."""
    too_large = ApiError(
        413,
        BODY_READ,
        f"failed to read request body: larger than the {MAX_BODY_BYTES} byte limit",
    )
    return await read_limited(request, too_large)


async def read_limited(request: Request, too_large: ApiError) -> bytes:
    """The request body; `too_large` is raised past `MAX_BODY_BYTES`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY_BYTES:
            raise too_large
    return bytes(chunks)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(raw: bytes) -> JSON:
    """Decode a body as strict JSON, as Go's protojson does: UTF-8 only, no NaN or
    Infinity, no key twice in one object, no lone surrogate escapes. Raises `ApiError`
    400 `ERR_MALFORMED_REQUEST` saying what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed(f"not valid UTF-8 at byte {exc.start}") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKeyError as exc:
        raise malformed(f"duplicate key {json.dumps(str(exc))} in an object") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise malformed(f"not valid JSON: {exc.msg} at {where}") from None
    except ValueError as exc:
        raise malformed(str(exc)) from None
    except RecursionError:
        raise malformed(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if _too_deep(value):
        raise malformed(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise malformed("a string holds a lone UTF-16 surrogate escape") from None
    return value


SchedulerDep = Annotated[JobScheduler, Depends(get_scheduler)]
JobsDep = Annotated[SidecarJobs, Depends(get_jobs)]
TriggerSinkDep = Annotated[TriggerSink, Depends(get_trigger_sink)]
SettingsDep = Annotated[TokenSettings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
BodyDep = Annotated[bytes, Depends(read_body)]
