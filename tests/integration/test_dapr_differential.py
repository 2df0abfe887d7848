"""The same Jobs API calls sent to a real daprd 1.16.5 and to duetime's embedded Jobs API,
and the same jobs fired at an app by both.

One sequence of valid and invalid calls (every row of docs' Dapr facts) goes to daprd's
`/v1.0-alpha1/jobs/{name}` and to duetime's (in-process, over `httpx.ASGITransport`, with
its lifespan run). For each call the status code, the `errorCode`, and for a 200 GET the
whole body are compared. Then the same short jobs are scheduled on both, and what reached
each side's app is compared: attempts, their spacing, the raw path, the body byte for byte
(daprd's protojson whitespace removed) and the headers.

Every difference is listed in `DIFFERENCES` or `TRIGGER_DIFFERENCES` with the reason; the
tests fail on a difference that is not listed and on a listed one that no longer occurs.
The same table is in docs/reference/http-api.md ("Differences from daprd 1.16.5, measured").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from duetime.app import create_app
from duetime.localdapr import Daprd, Scheduler
from duetime.settings import Settings

Body = dict[str, Any] | list[Any] | bytes | None
LATER = {"dueTime": "1h", "data": {"n": 1}}  # a valid job that does not fire during the test
APP_TOKEN = "app-secret"

# (label, method, job name, body); labels are unique. Jobs never fire during the test:
# every schedule is hours away.
CALLS: list[tuple[str, str, str, Body]] = [
    # -- schedule, get, overwrite, delete ----------------------------------------------
    ("due 1h", "POST", "one", LATER),
    ("get due 1h", "GET", "one", None),
    ("again without overwrite", "POST", "one", {"dueTime": "2h", "data": 2}),
    ("overwrite false", "POST", "one", {"dueTime": "2h", "data": 2, "overwrite": False}),
    ("overwrite true", "POST", "one", {"dueTime": "2h", "data": 2, "overwrite": True}),
    ("get overwritten", "GET", "one", None),
    ("delete existing", "DELETE", "one", None),
    ("get deleted", "GET", "one", None),
    ("get never created", "GET", "nothing-here", None),
    ("delete missing", "DELETE", "nothing-here", None),
    # -- schedules ---------------------------------------------------------------------
    ("cron 6 fields", "POST", "cron6", {"schedule": "0 30 9 * * MON-FRI", "data": "x"}),
    ("get cron 6 fields", "GET", "cron6", None),
    ("cron 5 fields", "POST", "cron5", {"schedule": "30 9 * * MON-FRI", "data": "x"}),
    ("get cron 5 fields", "GET", "cron5", None),
    ("cron nonsense", "POST", "cronx", {"schedule": "every day", "data": "x"}),
    ("cron tz", "POST", "crontz", {"schedule": "CRON_TZ=America/New_York 0 0 9 * * *", "data": 1}),
    ("get cron tz", "GET", "crontz", None),
    ("TZ= prefix", "POST", "tzeq", {"schedule": "TZ=Europe/Paris 0 0 9 * * *", "data": 1}),
    ("bad tz", "POST", "badtz", {"schedule": "CRON_TZ=Mars/Olympus 0 0 9 * * *", "data": 1}),
    ("every 1h", "POST", "every", {"schedule": "@every 1h", "data": 1}),
    ("get every 1h", "GET", "every", None),
    ("every sub-second", "POST", "everyms", {"schedule": "@every 1h0m0.5s", "data": 1}),
    ("every with CRON_TZ", "POST", "everytz", {"schedule": "CRON_TZ=UTC @every 1h", "data": 1}),
    ("get every with CRON_TZ", "GET", "everytz", None),
    ("daily", "POST", "daily", {"schedule": "@daily", "data": 1}),
    ("yearly", "POST", "yearly", {"schedule": "@yearly", "data": 1}),
    ("bad macro", "POST", "fortnight", {"schedule": "@fortnightly", "data": 1}),
    ("schedule and dueTime", "POST", "both", {"schedule": "@hourly", "dueTime": "2h", "data": 1}),
    ("get schedule and dueTime", "GET", "both", None),
    # -- dueTime, ttl, repeats ---------------------------------------------------------
    ("dueTime iso", "POST", "iso", {"dueTime": "PT2H", "data": 1}),
    ("get dueTime iso", "GET", "iso", None),
    ("dueTime go", "POST", "go", {"dueTime": "1h30m", "data": 1}),
    ("dueTime instant", "POST", "inst", {"dueTime": "2099-01-02T03:04:05Z", "data": 1}),
    ("get dueTime instant", "GET", "inst", None),
    ("dueTime nonsense", "POST", "duex", {"dueTime": "tomorrow", "data": 1}),
    ("dueTime iso repeating", "POST", "duer", {"dueTime": "R2/PT1H", "data": 1}),
    ("ttl without schedule", "POST", "ttl1", {"dueTime": "1h", "ttl": "2h", "data": 1}),
    ("repeats 2 without schedule", "POST", "rep1", {"dueTime": "1h", "repeats": 2, "data": 1}),
    ("repeats 1 without schedule", "POST", "rep0", {"dueTime": "1h", "repeats": 1, "data": 1}),
    ("repeats 0", "POST", "repz", {"schedule": "@every 1h", "repeats": 0, "data": 1}),
    ("repeats -1", "POST", "repn", {"schedule": "@every 1h", "repeats": -1, "data": 1}),
    (
        "ttl before dueTime",
        "POST",
        "ttl2",
        {
            "schedule": "@every 1h",
            "dueTime": "2099-01-02T00:00:00Z",
            "ttl": "2099-01-01T00:00:00Z",
            "data": 1,
        },
    ),
    (
        "ttl relative to dueTime",
        "POST",
        "ttl3",
        {"schedule": "@every 1h", "dueTime": "2h", "ttl": "1h", "repeats": 3, "data": 1},
    ),
    ("get ttl relative to dueTime", "GET", "ttl3", None),
    ("ttl in the past", "POST", "ttl4", {"schedule": "@every 1h", "ttl": "2000-01-01T00:00:00Z"}),
    # -- bodies ------------------------------------------------------------------------
    ("name in body", "POST", "named", {"name": "named", "dueTime": "1h", "data": 1}),
    ("malformed JSON", "POST", "bad", b'{"dueTime": '),
    ("JSON array", "POST", "arr", [1, 2]),
    ("JSON string", "POST", "str", b'"1h"'),
    ("empty body", "POST", "empty", b""),
    ("no schedule no dueTime", "POST", "nothing", {"data": 1}),
    ("null schedule and dueTime", "POST", "nulls", {"schedule": None, "dueTime": None}),
    ("dueTime a number", "POST", "num", {"dueTime": 5, "data": 1}),
    ("snake_case keys", "POST", "snake", {"due_time": "1h", "data": 1, "failure_policy": {}}),
    ("get snake_case keys", "GET", "snake", None),
    ("unknown keys", "POST", "unknown", {"dueTime": "1h", "data": 1, "colour": "blue"}),
    ("data null", "POST", "null", {"dueTime": "1h", "data": None}),
    ("get data null", "GET", "null", None),
    ("no data", "POST", "nodata", {"dueTime": "1h"}),
    ("get no data", "GET", "nodata", None),
    (
        "data of every kind",
        "POST",
        "kinds",
        {"dueTime": "1h", "data": {"s": "héllo", "f": 1.5, "b": True, "z": None, "l": [1, "2"]}},
    ),
    ("get data of every kind", "GET", "kinds", None),
    ("data big integer", "POST", "bigint", {"dueTime": "1h", "data": 12345678901234567890}),
    ("get data big integer", "GET", "bigint", None),
    (
        "data floats and key order",
        "POST",
        "floats",
        {"dueTime": "1h", "data": {"b": [2.0, -0.0, 1e-5, 1.5e16, 1e21, 0.1], "a": 1, "B": 2}},
    ),
    ("get data floats and key order", "GET", "floats", None),
    ("data 1e400", "POST", "inf", b'{"dueTime": "1h", "data": 1e400}'),
    ("data 1e-400", "POST", "tiny", b'{"dueTime": "1h", "data": 1e-400}'),
    ("get data 1e-400", "GET", "tiny", None),
    (
        "data integer of 400 digits",
        "POST",
        "huge-int",
        b'{"dueTime": "1h", "data": 1' + b"0" * 400 + b"}",
    ),
    ("body over 4 MiB", "POST", "huge", {"dueTime": "1h", "data": "x" * (4 * 1024 * 1024 + 10)}),
    # -- failure policies --------------------------------------------------------------
    (
        "constant policy",
        "POST",
        "const",
        {
            "dueTime": "1h",
            "data": 1,
            "failurePolicy": {"constant": {"interval": "5s", "maxRetries": 2}},
        },
    ),
    ("get constant policy", "GET", "const", None),
    (
        "constant without interval",
        "POST",
        "constnoint",
        {"dueTime": "1h", "data": 1, "failurePolicy": {"constant": {"maxRetries": 2}}},
    ),
    ("get constant without interval", "GET", "constnoint", None),
    (
        "constant interval 0s",
        "POST",
        "constzero",
        {
            "dueTime": "1h",
            "data": 1,
            "failurePolicy": {"constant": {"interval": "0s", "maxRetries": 2}},
        },
    ),
    ("get constant interval 0s", "GET", "constzero", None),
    (
        "constant without maxRetries",
        "POST",
        "constforever",
        {"dueTime": "1h", "data": 1, "failurePolicy": {"constant": {"interval": "2s"}}},
    ),
    ("get constant without maxRetries", "GET", "constforever", None),
    (
        "interval without s",
        "POST",
        "nos",
        {"dueTime": "1h", "data": 1, "failurePolicy": {"constant": {"interval": "5"}}},
    ),
    (
        "interval go style",
        "POST",
        "gostyle",
        {"dueTime": "1h", "data": 1, "failurePolicy": {"constant": {"interval": "1m"}}},
    ),
    ("drop policy", "POST", "drop", {"dueTime": "1h", "data": 1, "failurePolicy": {"drop": {}}}),
    ("get drop policy", "GET", "drop", None),
    # -- names -------------------------------------------------------------------------
    ("name capitals", "POST", "MyJob", LATER),
    ("get name capitals", "GET", "MyJob", None),
    ("name underscore", "POST", "my_job", LATER),
    ("name colon", "POST", "my:job", LATER),
    ("name space", "POST", "my job", LATER),
    ("get name space", "GET", "my job", None),
    ("name dots", "POST", "a.b.c", LATER),
    ("name non-ASCII", "POST", "jöb", LATER),
    ("name Kelvin sign", "POST", "\u212a", LATER),
    ("name at sign", "POST", "a@b", LATER),
    ("name at sign without schedule", "POST", "a@b", {"data": 1}),
    ("get name at sign", "GET", "a@b", None),
    ("delete name at sign", "DELETE", "a@b", None),
    ("name hash", "POST", "a#b", LATER),
    ("name tab", "POST", "a\tb", LATER),
    ("name pipe", "POST", "a|b", LATER),
    ("name pipe without schedule", "POST", "a|b", {"data": 1}),
    ("get name pipe", "GET", "a|b", None),
    ("delete name pipe", "DELETE", "a|b", None),
    ("name 253 chars", "POST", "n" * 253, LATER),
    ("name 254 chars", "POST", "n" * 254, LATER),
    ("name 300 chars with dashes", "POST", "n-" * 150, LATER),
    ("name leading dot", "POST", ".lead", LATER),
    ("name dot dash", "POST", "a.-b", LATER),
    ("name dashes only", "POST", "---", LATER),
    ("name padded", "POST", " padded ", LATER),
    ("get name padded as sent", "GET", " padded ", None),
    ("get name padded trimmed", "GET", "padded", None),
]


class Recorder(BaseHTTPRequestHandler):
    """An app that records every trigger (time, raw path, headers, body) and answers 500
    for jobs named `fail-…`, 404 for `gone-…` and 200 otherwise."""

    server: _RecordingServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        name = self.path.removeprefix("/job/")
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.server.lock:
            self.server.received.append(Received(time.monotonic(), self.path, headers, body))
        status = 500 if name.startswith("fail-") else 404 if name.startswith("gone-") else 200
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # daprd asks for /dapr/config and /dapr/subscribe
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


class _RecordingServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Recorder)
        self.lock = threading.Lock()
        self.received: list[Received] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@contextmanager
def recording_app() -> Iterator[_RecordingServer]:
    app = _RecordingServer()
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        app.shutdown()
        app.server_close()


@dataclass
class Sidecar:
    url: str
    app: _RecordingServer


@pytest.fixture(scope="module")
def daprd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    root = tmp_path_factory.mktemp("dapr")
    with recording_app() as app:
        scheduler = Scheduler(root / "scheduler")
        sidecar = Daprd(
            root / "daprd",
            app_id="differential",
            app_port=app.server_address[1],
            scheduler_address=scheduler,
            app_api_token=APP_TOKEN,
        )
        try:
            scheduler.start()
            sidecar.start(wait_for_app=True)
            yield Sidecar(sidecar.http_url, app)
        finally:
            sidecar.stop()
            scheduler.stop()


@pytest.fixture
def duetime_app() -> Iterator[_RecordingServer]:
    with recording_app() as app:
        yield app


@pytest.fixture
async def duetime(
    tmp_path: Path, duetime_app: _RecordingServer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=tmp_path / "duetime", app_url=duetime_app.url, app_api_token=APP_TOKEN
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
            yield client
    # a database call cancelled at shutdown (the embedded broker's delivery loop) finishes
    # on aiosqlite's thread; let it report back before pytest closes the event loop
    await asyncio.sleep(0.2)


async def call(client: httpx.AsyncClient, method: str, name: str, body: Body) -> str:
    """The answer in one line: status and errorCode, or status and body for a 200 GET
    (keys in the order sent: daprd's proto order, and its sorted `data` keys)."""
    url = f"/v1.0-alpha1/jobs/{quote(name, safe='')}"
    if isinstance(body, bytes):
        headers = {"content-type": "application/json"}
        answer = await client.request(method, url, content=body, headers=headers)
    elif body is not None:
        answer = await client.request(method, url, json=body)
    else:
        answer = await client.request(method, url)
    if method == "GET" and answer.status_code == 200:
        return f"200 {json.dumps(answer.json(), ensure_ascii=False)}"
    if not answer.content:
        return str(answer.status_code)
    try:
        code = answer.json().get("errorCode")
    except (ValueError, AttributeError):
        code = f"non-JSON body {answer.text[:60]!r}"
    return f"{answer.status_code} {code}"


# label -> (daprd's answer, duetime's answer, why). Kept in step with the table in
# docs/reference/http-api.md, "Differences from daprd 1.16.5, measured".
_S500 = "500 DAPR_SCHEDULER_SCHEDULE_JOB"
_S400 = "400 DAPR_SCHEDULER_SCHEDULE_JOB"
_G500 = "500 DAPR_SCHEDULER_GET_JOB"
_G404 = "404 DAPR_SCHEDULER_GET_JOB"
_D500 = "500 DAPR_SCHEDULER_DELETE_JOB"
_INVALID = "a client's mistake is a 400 in duetime (daprd: 500)"
_MISSING = "a missing job is a 404 in duetime (daprd: 500)"
_NO_SUCH_NAME = "no job can have a name duetime refuses: GET is a 404, as for any missing job"
_NOTHING_TO_DELETE = (
    "no job can have a name duetime refuses: DELETE deletes nothing, 204 as for any missing job"
)
_EXACT = "daprd rounds every number to a float64; duetime keeps integers exact"
_NULL = "duetime keeps no data as data null: delivered as `null`, shown as value null"
_DEFAULT_POLICY = {"constant": {"interval": "1s", "maxRetries": 3}}


def _got(name: str, data: Any = 1, policy: Any = None, **fields: str) -> str:
    """A 200 GET as both render it: fields in proto order, `data` wrapped."""
    body: dict[str, Any] = {"name": name, **fields}
    body["data"] = {"@type": "type.googleapis.com/google.protobuf.Value", "value": data}
    body["failurePolicy"] = policy or _DEFAULT_POLICY
    return f"200 {json.dumps(body, ensure_ascii=False)}"


DIFFERENCES: dict[str, tuple[str, str, str]] = {
    "get deleted": (_G500, _G404, _MISSING),
    "get never created": (_G500, _G404, _MISSING),
    "get cron 5 fields": (_G500, _G404, _MISSING + " (the 5-field job was refused)"),
    "get name padded as sent": (_G500, _G404, _MISSING + "; both trim the name on POST only"),
    "cron 5 fields": (_S500, _S400, _INVALID),
    "cron nonsense": (_S500, _S400, _INVALID),
    "bad tz": (_S500, _S400, _INVALID),
    "bad macro": (_S500, _S400, _INVALID),
    "dueTime nonsense": (_S500, _S400, _INVALID),
    "dueTime iso repeating": (_S500, _S400, _INVALID),
    "ttl without schedule": (_S500, _S400, _INVALID),
    "repeats 2 without schedule": (_S500, _S400, _INVALID),
    "repeats 0": (_S500, _S400, _INVALID),
    "ttl before dueTime": (_S500, _S400, _INVALID),
    "every with CRON_TZ": (
        "204",
        _S400,
        "duetime takes only jobs both daprd 1.16.5 and 1.18.3 take; 1.18.3 refuses a zone"
        " with @every (it has no effect on an interval)",
    ),
    "get every with CRON_TZ": (
        _got("everytz", schedule="CRON_TZ=UTC @every 1h"),
        _G404,
        "follows from the previous row",
    ),
    "ttl in the past": (
        "204",
        _S400,
        "duetime refuses a job that expires before its first tick (daprd accepts a job"
        " that can never fire)",
    ),
    "get no data": (
        "500 ERR_INTERNAL",
        _got("nodata", None, dueTime="1h"),
        "daprd 1.16.5 stores a job without data that it can neither show nor deliver; " + _NULL,
    ),
    "get data big integer": (
        _got("bigint", 12345678901234567000, dueTime="1h"),
        _got("bigint", 12345678901234567890, dueTime="1h"),
        _EXACT,
    ),
    "body over 4 MiB": ("400 ERR_BODY_READ", "413 ERR_BODY_READ", "duetime answers 413"),
    "get constant without interval": (
        _got("constnoint", policy={"constant": {"maxRetries": 2}}, dueTime="1h"),
        _got("constnoint", policy={"constant": {"interval": "0s", "maxRetries": 2}}, dueTime="1h"),
        "duetime's job model keeps the interval in effect, 0s, and cannot tell it from an"
        " explicit 0s (which daprd shows as here); both retry at once",
    ),
    "name non-ASCII": (_S500, _S400, _INVALID),
    "name Kelvin sign": (
        "204",
        _S400,
        "duetime refuses every non-ASCII name; daprd lower-cases K (U+212A) to k and lets it pass",
    ),
    "name at sign": (_S500, _S400, _INVALID),
    "get name at sign": (_G500, _G404, _NO_SUCH_NAME),
    "delete name at sign": (_D500, "204", _NOTHING_TO_DELETE),
    "name hash": (_S500, _S400, _INVALID),
    "name tab": (_S500, _S400, _INVALID),
    "get name pipe": (_G500, _G404, _NO_SUCH_NAME),
    "delete name pipe": (_D500, "204", _NOTHING_TO_DELETE),
    "name 254 chars": (_S500, _S400, _INVALID),
    "name leading dot": (_S500, _S400, _INVALID),
    "name dashes only": (_S500, _S400, _INVALID),
}


def _problems(
    observed: dict[str, tuple[str, str]], listed: dict[str, tuple[str, str, str]]
) -> list[str]:
    problems = []
    for label, (theirs, ours) in observed.items():
        known = listed.get(label)
        if theirs == ours and known is not None:
            problems.append(f"{label!r}: listed difference no longer occurs: both {theirs}")
        elif theirs != ours and known is None:
            problems.append(f"{label!r}: unlisted difference: daprd {theirs} | duetime {ours}")
        elif theirs != ours and known is not None and known[:2] != (theirs, ours):
            problems.append(
                f"{label!r}: difference changed: daprd {theirs} | duetime {ours}"
                f" (listed: daprd {known[0]} | duetime {known[1]})"
            )
    missing = set(listed) - set(observed)
    if missing:
        problems.append(f"listed but never observed: {sorted(missing)}")
    return problems


async def test_same_calls_same_answers(daprd: Sidecar, duetime: httpx.AsyncClient) -> None:
    assert len({label for label, *_ in CALLS}) == len(CALLS)
    observed: dict[str, tuple[str, str]] = {}
    async with httpx.AsyncClient(base_url=daprd.url, timeout=30) as dapr:
        for label, method, name, body in CALLS:
            observed[label] = (
                await call(dapr, method, name, body),
                await call(duetime, method, name, body),
            )
    problems = _problems(observed, DIFFERENCES)
    assert not problems, "\n".join(problems)


# -- triggers ------------------------------------------------------------------------------
# (label, job name, body): each fires 1 s after it is scheduled, on both sides at once.
# Names starting `fail-` are answered 500 by the app, `gone-` 404.
TRIGGER_JOBS: list[tuple[str, str, dict[str, Any]]] = [
    ("data null", "t-null", {"dueTime": "1s", "data": None}),
    ("no data", "t-nodata", {"dueTime": "1s"}),
    ("a string", "t-str", {"dueTime": "1s", "data": "plain"}),
    (
        "non-ASCII, control characters, quotes",
        "t-text",
        {
            "dueTime": "1s",
            "data": {"s": "héllo ☃ 😀", "ctl": "a\u0001b\u007f\u2028", "q": '"\\<&>'},
        },
    ),
    (
        "object key order",
        "t-order",
        {
            "dueTime": "1s",
            "data": {"b": 1, "a": {"z": 1, "y": [3, {"d": 1, "c": 2}]}, "B": 0, "é": 1},
        },
    ),
    (
        "floats",
        "t-floats",
        {"dueTime": "1s", "data": [2.0, -0.0, 0.0, 1e-7, 1e-5, 1.5e16, 1e20, 1e21, 0.1, 2.5]},
    ),
    ("big integers", "t-bigint", {"dueTime": "1s", "data": [12345678901234567890, 3, -7]}),
    ("name with a space", "t space", {"dueTime": "1s", "data": 1}),
    ("name with a colon", "t:colon", {"dueTime": "1s", "data": 1}),
    ("name with capitals, '_', '.', '-'", "T_caps.x-y", {"dueTime": "1s", "data": 1}),
    ("the app answers 404", "gone-1", {"dueTime": "1s", "data": 1}),
    (
        "failing, drop policy",
        "fail-drop",
        {"dueTime": "1s", "data": 1, "failurePolicy": {"drop": {}}},
    ),
    (
        "failing, constant without interval",
        "fail-noint",
        {"dueTime": "1s", "data": 1, "failurePolicy": {"constant": {"maxRetries": 2}}},
    ),
    (
        "failing, constant 0s",
        "fail-zero",
        {
            "dueTime": "1s",
            "data": 1,
            "failurePolicy": {"constant": {"interval": "0s", "maxRetries": 2}},
        },
    ),
    (
        "failing, constant 0.5s",
        "fail-half",
        {
            "dueTime": "1s",
            "data": 1,
            "failurePolicy": {"constant": {"interval": "0.5s", "maxRetries": 1}},
        },
    ),
]
TRANSPORT_HEADERS = {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "connection",
    "content-length",
}


def without_whitespace(body: bytes) -> bytes:
    """JSON text without whitespace outside strings: daprd's protojson adds a space after
    some `,` and `:`, which ones depending on the build (protobuf-go's detrand)."""
    out = bytearray()
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # a backslash escapes the next byte
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte in b" \t\r\n":
            continue
        else:
            in_string = byte == 0x22
        out.append(byte)
    return bytes(out)


def _spacing(times: list[float]) -> str:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps:
        return ""
    gap = statistics.median(gaps)
    return ", at once" if gap < 0.25 else f", {round(gap * 2) / 2:g}s apart"


def delivered(received: list[Received], name: str) -> str:
    """What one job's triggers were, in one line."""
    mine = [r for r in received if unquote(r.path.removeprefix("/job/")) == name]
    if not mine:
        return "never delivered"
    paths = sorted({r.path for r in mine})
    bodies = sorted({without_whitespace(r.body) for r in mine})
    return f"{len(mine)}x POST {' '.join(paths)} {bodies}{_spacing([r.at for r in mine])}"


def headers_of(received: list[Received]) -> str:
    names = sorted({h for r in received for h in r.headers} - TRANSPORT_HEADERS)
    kinds = sorted({r.headers.get("content-type", "") for r in received})
    tokens = sorted({r.headers.get("dapr-api-token", "") for r in received})
    return f"{names}; content-type {kinds}; dapr-api-token {tokens}"


TRIGGER_DIFFERENCES: dict[str, tuple[str, str, str]] = {
    "no data": (
        "never delivered",
        "1x POST /job/t-nodata [b'null']",
        "daprd 1.16.5 never delivers a job without data; " + _NULL,
    ),
    "big integers": (
        "1x POST /job/t-bigint [b'[12345678901234567000,3,-7]']",
        "1x POST /job/t-bigint [b'[12345678901234567890,3,-7]']",
        _EXACT,
    ),
    "headers": (
        "['content-type', 'dapr-api-token']; content-type ['application/json'];"
        f" dapr-api-token [{APP_TOKEN!r}]",
        "['content-type', 'dapr-api-token', 'duetime-attempt', 'duetime-late',"
        " 'duetime-scheduled-time']; content-type ['application/json'];"
        f" dapr-api-token [{APP_TOKEN!r}]",
        "duetime adds the tick, the attempt and lateness as headers, for idempotency keys"
        " and monitoring; an app written for Dapr ignores them",
    ),
}


async def _settle(apps: list[_RecordingServer], quiet: float, deadline: float) -> None:
    """Wait until no app has received anything for `quiet` seconds, or until `deadline`."""
    seen = -1
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        count = sum(len(a.snapshot()) for a in apps)
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return
        await asyncio.sleep(0.1)


async def test_same_jobs_same_triggers(
    daprd: Sidecar, duetime: httpx.AsyncClient, duetime_app: _RecordingServer
) -> None:
    assert len({label for label, *_ in TRIGGER_JOBS}) == len(TRIGGER_JOBS)
    async with httpx.AsyncClient(base_url=daprd.url, timeout=30) as dapr:
        for _, name, body in TRIGGER_JOBS:
            for client in (dapr, duetime):
                answer = await call(client, "POST", name, body)
                assert answer == "204", f"{name}: {answer}"
    # every trigger is due 1 s after its POST; the slowest retry ends about 0.5 s later
    started = time.monotonic()
    await asyncio.sleep(1.5)
    await _settle([daprd.app, duetime_app], quiet=1.5, deadline=started + 10)
    theirs_all = [r for r in daprd.app.snapshot() if r.path.startswith("/job/")]
    ours_all = duetime_app.snapshot()
    observed = {
        label: (delivered(theirs_all, name), delivered(ours_all, name))
        for label, name, _ in TRIGGER_JOBS
    }
    observed["headers"] = (headers_of(theirs_all), headers_of(ours_all))
    problems = _problems(observed, TRIGGER_DIFFERENCES)
    assert not problems, "\n".join(problems)
