"""Dapr's HTTP error body, and the handlers that turn every failure into one.

daprd answers errors with `{"errorCode", "message", "details": [ErrorInfo]}` (dapr/kit
`errors.Error.JSONErrorValue`; the ErrorInfo has domain `dapr.io` and the code as `reason`).
Its older `messages.APIError`s, such as `ERR_MALFORMED_REQUEST`, carry no `details`;
duetime always sends them, so clients need one parser.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duetime.db.storage import storage_full
from duetime.jobs.dapr import SidecarUnavailable

log = logging.getLogger(__name__)

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
ERROR_DOMAIN = "dapr.io"

# Dapr's codes (pkg/messages/errorcodes/errorcodes.go)
MALFORMED_REQUEST = "ERR_MALFORMED_REQUEST"
BODY_READ = "ERR_BODY_READ"
INTERNAL = "ERR_INTERNAL"
SCHEDULE_JOB = "DAPR_SCHEDULER_SCHEDULE_JOB"
SCHEDULE_EMPTY = "DAPR_SCHEDULER_SCHEDULE_EMPTY"
JOB_NAME = "DAPR_SCHEDULER_JOB_NAME"
JOB_NAME_EMPTY = "DAPR_SCHEDULER_JOB_NAME_EMPTY"
GET_JOB = "DAPR_SCHEDULER_GET_JOB"
# duetime's own: daprd answers a bad token with a plain-text 401 and has no code for it
UNAUTHORIZED = "ERR_UNAUTHORIZED"
DEAD_LETTER_NOT_FOUND = "DUETIME_DEAD_LETTER_NOT_FOUND"
REPLAY_FAILED = "DUETIME_REPLAY_FAILED"
NO_HANDLER = "DUETIME_NO_HANDLER"
HANDLER_FAILED = "DUETIME_HANDLER_FAILED"
SIDECAR_UNAVAILABLE = "DUETIME_SIDECAR_UNAVAILABLE"
APP_FORBIDDEN = "DUETIME_APP_FORBIDDEN"
APP_NOT_FOUND = "DUETIME_APP_NOT_FOUND"
NOT_FOUND = "ERR_NOT_FOUND"
METHOD_NOT_ALLOWED = "ERR_METHOD_NOT_ALLOWED"
STORAGE_FULL = "DUETIME_STORAGE_FULL"


class ErrorInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type_: str = Field(ERROR_INFO_TYPE, alias="@type")
    domain: str = ERROR_DOMAIN
    reason: str
    metadata: dict[str, str] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error answer of duetime's HTTP API."""

    errorCode: str
    message: str
    details: list[ErrorInfo]


def printable(text: str) -> str:
    """`text` as it can be sent: a lone UTF-16 surrogate (valid in a JSON string, not in
    UTF-8) echoed from the input is written as its escape, so no message fails to encode."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(code: str, message: str) -> dict[str, Any]:
    return {
        "errorCode": code,
        "message": printable(message),
        "details": [
            {"@type": ERROR_INFO_TYPE, "domain": ERROR_DOMAIN, "reason": code, "metadata": {}}
        ],
    }


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


class ApiError(Exception):
    """Raised by routes and dependencies; answered as a Dapr error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def malformed(message: str) -> ApiError:
    """Dapr's wording for a body it cannot decode."""
    return ApiError(400, MALFORMED_REQUEST, f"failed deserializing HTTP body: {message}")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error statuses. The `4XX` entry also stops FastAPI
    from documenting its 422, which these routes never send."""
    entries: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in statuses}
    entries["4XX"] = {"model": ErrorBody, "description": "Client error"}
    return entries


_SOURCES = ("body", "query", "path", "header", "cookie")  # FastAPI's first `loc` item
_PLAIN_MESSAGES = {
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "model_type": "expected a JSON object",
    "model_attributes_type": "expected a JSON object",
    "dict_type": "expected a JSON object",
    "list_type": "expected a JSON array",
}


def json_kind(value: object) -> str:
    """The JSON type of a decoded value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One clause per pydantic/FastAPI error, naming the field as the client spelled it."""
    parts = []
    for error in errors:
        where = field_path(error.get("loc", ()))
        kind = error.get("type")
        message = plain_message(error.get("msg", "invalid value"))
        if kind == "json_invalid":
            reason = (error.get("ctx") or {}).get("error")
            where, message = "", "the body is not valid JSON" + (f": {reason}" if reason else "")
        elif kind in _PLAIN_MESSAGES:
            message = f"{_PLAIN_MESSAGES[kind]}, got {json_kind(error.get('input'))}"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic `loc` as the client spells the field: `tasks[1].reminders[0].before`."""
    parts = list(loc[1:] if loc and loc[0] in _SOURCES else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def plain_message(msg: object) -> str:
    """pydantic's message without the "Value error, " it puts before a validator's own."""
    return str(msg).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/api/"):
        return unprocessable(describe_validation_errors(exc.errors()), exc.errors())
    return error_response(400, MALFORMED_REQUEST, describe_validation_errors(exc.errors()))


def unprocessable(message: str, errors: Sequence[Any] = ()) -> JSONResponse:
    """The task API's 422: a readable `detail` and, when there are any, the field errors."""
    fields = [
        {
            "loc": [printable(str(p)) for p in e.get("loc", ())],
            "msg": printable(plain_message(e.get("msg", ""))),
        }
        for e in errors
    ]
    return JSONResponse({"detail": printable(message), "errors": fields}, status_code=422)


class _CatchAll:
    """Answers an unexpected exception with a generic 500 and logs it here, once.

    Starlette's own `Exception` handler re-raises after answering, which double-logs and
    breaks in-process clients; this middleware sits inside it and does not.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            where = f"{scope.get('method')} {scope.get('path')}"
            full = storage_full(exc)
            if full is not None:
                log.error("%s: storage is full (%s); nothing of it was saved", where, full)
                status, answer = 507, _storage_full_body(scope.get("path", ""), full)
            else:
                log.exception("unhandled error in %s", where)
                status, answer = 500, error_body(INTERNAL, "internal error; see the server log")
            if started:
                raise
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


def _storage_full_body(path: str, reason: str) -> dict[str, Any]:
    message = (
        f"storage is full: the database could not write ({printable(reason)}); nothing of "
        "this request was saved: free space for the database and try again"
    )
    if path.startswith("/api/"):
        return {"detail": message}
    return error_body(STORAGE_FULL, message)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """The router's own 404 and 405 (and any other HTTPException) in the shape of the
    surface asked: the task API's `{"detail"}`, everywhere else Dapr's error body."""
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    allowed = next((v for k, v in (exc.headers or {}).items() if k.lower() == "allow"), "")
    routers_own = exc.detail == HTTPStatus(exc.status_code).phrase  # no message of ours
    code, message = f"ERR_HTTP_{exc.status_code}", str(exc.detail)
    if exc.status_code == 404:
        code = NOT_FOUND
        if routers_own:
            message = f"no route for {where}"
    elif exc.status_code == 405:
        code = METHOD_NOT_ALLOWED
        if routers_own:
            message = f"method not allowed: {where}; allowed: {allowed}"
    if request.url.path.startswith("/api/"):
        detail = printable(message) if isinstance(exc.detail, str) else exc.detail
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
    return error_response(exc.status_code, code, message, exc.headers)


async def _sidecar_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    message = "the Dapr sidecar is not available; try again"
    return error_response(503, SIDECAR_UNAVAILABLE, message, {"retry-after": "1"})


def install_error_handlers(app: FastAPI) -> None:
    """Dapr error bodies for `ApiError` and request validation (400, never FastAPI's 422),
    503 while the Dapr sidecar is away, and a generic 500 without a traceback for anything
    unexpected."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(SidecarUnavailable, _sidecar_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(_CatchAll)
