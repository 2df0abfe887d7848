"""Glue shared by the brief modules: not the briefs' code.

`Steps` runs one brief function per step and records its outcome: what it returned or
raised, what it printed, and every HTTP exchange it made through httpx (method, path,
status, and the body: the `errorCode` of an error, the JSON of a 2xx, "" when empty; and
an error's `message`, for people).
`emit()` prints the record as one JSON line, prefixed `SEED-RESULT `, for the test.

With `SEEDS_JOBS_PATH=/v1.0-alpha1/jobs` in the environment, a request to `/v1.0/jobs...`
is sent to that path instead: the test's second run of a brief that uses `/v1.0/jobs`, to
show what daprd 1.16.5 (which serves the Jobs API only under `/v1.0-alpha1`) does with
the brief's bodies. The brief's code is not changed for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx

MARKER = "SEED-RESULT "


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return ""
    try:
        parsed = response.json()
    except ValueError:
        return f"non-JSON: {response.text[:80]}"
    if response.status_code >= 400 and isinstance(parsed, dict) and "errorCode" in parsed:
        return {"errorCode": parsed["errorCode"]}
    return parsed


def _message(response: httpx.Response) -> str:
    """An error's `message` (not compared: daprd's and duetime's wording differ)."""
    if response.status_code < 400:
        return ""
    try:
        return str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        return response.text[:200]


class Steps:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._http: list[list[Any]] | None = None
        self._patched = False

    def _patch(self) -> None:
        if self._patched:
            return
        self._patched = True
        rewrite = os.environ.get("SEEDS_JOBS_PATH")
        steps = self
        sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

        def _rewrite(request: httpx.Request) -> None:
            path = request.url.raw_path.decode()
            if rewrite and path.startswith("/v1.0/jobs"):
                new = rewrite + path.removeprefix("/v1.0/jobs")
                request.url = request.url.copy_with(raw_path=new.encode())

        def _record(request: httpx.Request, response: httpx.Response) -> None:
            if steps._http is not None:
                path = request.url.raw_path.decode()
                exchange = [request.method, path, response.status_code, _body(response)]
                steps._http.append([*exchange, _message(response)])

        def send(client: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
            _rewrite(request)
            response = sync_send(client, request, **kw)
            response.read()
            _record(request, response)
            return response

        async def asend(
            client: httpx.AsyncClient, request: httpx.Request, **kw: Any
        ) -> httpx.Response:
            _rewrite(request)
            response = await async_send(client, request, **kw)
            await response.aread()
            _record(request, response)
            return response

        httpx.Client.send = send  # type: ignore[method-assign,assignment]
        httpx.AsyncClient.send = asend  # type: ignore[method-assign,assignment]

    def run(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `fn(*args, **kwargs)` (run to completion if it is a coroutine function)."""
        self._patch()
        self._http = []
        printed = io.StringIO()
        step: dict[str, Any] = {"step": label}
        result = None
        try:
            with contextlib.redirect_stdout(printed):
                result = fn(*args, **kwargs)
                if asyncio.iscoroutine(result):
                    result = asyncio.run(result)
            step["returned"] = _jsonable(result)
        except Exception as exc:  # the outcome of a brief's call, recorded
            step["raised"] = _describe(exc)
            step["traceback"] = traceback.format_exc(limit=3)[-1500:]
        step["printed"] = printed.getvalue().splitlines()
        step["http"] = self._http
        self._http = None
        self.steps.append(step)
        return result

    def emit(self) -> None:
        print(MARKER + json.dumps(self.steps), flush=True)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def _describe(exc: Exception) -> dict[str, Any]:
    """The exception class, and for the SDK's `DaprGrpcError` its gRPC code and reason."""
    out: dict[str, Any] = {"type": type(exc).__name__}
    code = getattr(exc, "code", None)
    if callable(code):
        with contextlib.suppress(Exception):
            out["code"] = code().name
        with contextlib.suppress(Exception):
            info = exc.status_details().error_info or {}  # type: ignore[attr-defined]
            out["reason"] = info.get("reason")
    if isinstance(exc, KeyError):
        out["key"] = exc.args[0] if exc.args else None
    return out


@contextlib.contextmanager
def steps() -> Iterator[Steps]:
    record = Steps()
    try:
        yield record
    finally:
        record.emit()
