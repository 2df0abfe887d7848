"""Delivery to an external app, exactly as a Dapr sidecar does it."""

from __future__ import annotations

import json
import logging
import math
from decimal import Decimal
from typing import Literal
from urllib.parse import quote

import httpx

from duetime.jobs.model import JSON, Answer, Trigger
from duetime.timefmt import format_rfc3339

log = logging.getLogger(__name__)

# Go's url.URL.EscapedPath leaves these unescaped in a path; '/' is escaped here (a name
# holding one must stay one path segment).
_PATH_SAFE = "$&+,:;=@"


class AppDeliveryError(Exception):
    """The app answered with a failure status or could not be reached."""


def encode_data(data: JSON) -> bytes:
    """A job's data as daprd 1.16.5 sends it to the app: the JSON of a
    `google.protobuf.Value` as Go's protojson writes it.

    Object keys sorted (protojson sorts a Struct's keys); text as raw UTF-8 with only `"`,
    `\\` and control characters escaped; floats as Go writes a float64 (`2.0` is `2`,
    `1e-05` is `0.00001`, `1e-07` is `1e-7`, `-0.0` is `-0`). `None` (a job without data,
    or `data: null`) is `null`. One deliberate difference: integers are written exactly,
    where daprd rounds every number to a float64 (`12345678901234567890` arrives there as
    `12345678901234567000`). daprd's protojson also puts a space after some `,` and `:`
    (which ones depends on the build); duetime writes none. Raises `ValueError` for a
    non-finite float, which JSON cannot carry.
    """
    return "".join(_encode(data)).encode("utf-8")


def _encode(value: JSON) -> list[str]:
    out: list[str] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif item is None:
            out.append("null")
        elif item is True:
            out.append("true")
        elif item is False:
            out.append("false")
        elif isinstance(item, str):
            out.append(json.dumps(item, ensure_ascii=False))
        elif isinstance(item, int):
            out.append(str(item))
        elif isinstance(item, float):
            out.append(go_float(item))
        elif isinstance(item, list | tuple):
            parts: list[object] = [_OPEN_LIST]
            for i, child in enumerate(item):
                if i:
                    parts.append(_COMMA)
                parts.append(child)
            parts.append(_CLOSE_LIST)
            stack.extend(reversed(parts))
        elif isinstance(item, dict):
            parts = [_OPEN_OBJECT]
            for i, key in enumerate(sorted(item)):
                if not isinstance(key, str):
                    raise TypeError(f"JSON object keys are strings, got {type(key).__name__}")
                if i:
                    parts.append(_COMMA)
                parts += [_Text(json.dumps(key, ensure_ascii=False) + ":"), item[key]]
            parts.append(_CLOSE_OBJECT)
            stack.extend(reversed(parts))
        else:
            raise TypeError(f"not a JSON value: {type(item).__name__}")
    return out


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_OPEN_LIST, _CLOSE_LIST = _Text("["), _Text("]")
_OPEN_OBJECT, _CLOSE_OBJECT = _Text("{"), _Text("}")
_COMMA = _Text(",")


def go_float(number: float) -> str:
    """A float64 as Go's protojson (and encoding/json) writes it: the shortest digits that
    read back to the same float, in plain notation from 1e-6 up to 1e21, else as
    `1e+21`/`1e-7` (no leading zero in the exponent)."""
    if not math.isfinite(number):
        raise ValueError(f"{number!r} is not a JSON number")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    shortest = repr(number)  # Python's repr is the shortest round-trip form, as Go's -1
    if 1e-6 <= abs(number) < 1e21:
        return format(Decimal(shortest).normalize(), "f")
    mantissa, _, exponent = shortest.partition("e")
    sign = exponent[0] if exponent[:1] in ("+", "-") else "+"
    digits = exponent.lstrip("+-").lstrip("0") or "0"
    if sign == "+" and len(digits) < 2:
        digits = digits.rjust(2, "0")
    return f"{mantissa.removesuffix('.0')}e{sign}{digits}"


def _why(exc: httpx.HTTPError) -> str:
    """What went wrong, in words, also when httpx gives an empty message (a peer that
    closed or reset the connection)."""
    if str(exc):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{type(exc).__name__}: no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return f"{type(exc).__name__}: the connection was refused or could not be made"
    return f"{type(exc).__name__}: the app closed the connection without an answer"


NotFoundRule = Literal["success", "failure"]


def not_found_answer(trigger: Trigger, answer: str, rule: NotFoundRule) -> Answer:
    """The app has no handler for `trigger` (HTTP 404, gRPC NOT_FOUND): log it, and raise
    `AppDeliveryError` when `rule` says it is a failure; else `Answer.APP_NOT_FOUND`, which
    the engine counts on the job."""
    where = f"job {trigger.name!r} (attempt {trigger.attempt})"
    if rule == "failure":
        log.warning(
            "%s: the app answered %s; counted as a failure (DUETIME_APP_404)", where, answer
        )
        raise AppDeliveryError(
            f"app answered {answer}: it has no handler for this job (DUETIME_APP_404=failure)"
        )
    log.warning(
        "%s: the app answered %s, so the trigger is dropped as delivered (Dapr's rule; "
        "DUETIME_APP_404=failure retries it instead)",
        where,
        answer,
    )
    return Answer.APP_NOT_FOUND


class HttpAppChannel:
    """A trigger handler that POSTs `{app_url}/job/{name}` with the job's data as the JSON
    body (`encode_data`: what daprd sends; `null` for a job without data) and
    `dapr-api-token` when a token is set.

    2xx is success, and so is 404 with `not_found="success"` (Dapr's rule: a 404 means
    "not mine" and is not retried; logged, as `not_found_answer` words it, and answered
    `Answer.APP_NOT_FOUND` for the engine to count); a 404 with
    `not_found="failure"`, any other status, a timeout or a connection error raises
    `AppDeliveryError`, which the engine counts against the job's failure policy. Besides
    Dapr's request, duetime adds `duetime-scheduled-time`, `duetime-attempt` and
    `duetime-late` headers.
    """

    def __init__(
        self,
        app_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 100,
        not_found: NotFoundRule = "success",
    ) -> None:
        self._not_found = not_found
        headers = {"content-type": "application/json"}
        if token:
            headers["dapr-api-token"] = token
        self._client = httpx.AsyncClient(
            base_url=app_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def __call__(self, trigger: Trigger) -> Answer | None:
        headers = {
            "duetime-scheduled-time": format_rfc3339(trigger.scheduled_at),
            "duetime-attempt": str(trigger.attempt),
            "duetime-late": "true" if trigger.late else "false",
        }
        try:
            response = await self._client.post(
                f"/job/{quote(trigger.name, safe=_PATH_SAFE)}",
                content=encode_data(trigger.data),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise AppDeliveryError(f"app unreachable: {_why(exc)}") from exc
        if response.is_success:
            return None
        if response.status_code == 404:
            return not_found_answer(trigger, "404", self._not_found)
        raise AppDeliveryError(f"app answered {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        await self._client.aclose()
