"""The same Jobs API calls sent to a real daprd 1.16.5 and to duetime's embedded Jobs API.

One sequence of valid and invalid calls (every row of docs' Dapr facts) goes to daprd's
`/v1.0-alpha1/jobs/{name}` and to duetime's (in-process, over `httpx.ASGITransport`, with
its lifespan run). For each call the status code, the `errorCode`, and for a 200 GET the
whole body are compared. Every difference is listed in `DIFFERENCES` with the reason; the
test fails on a difference that is not listed and on a listed one that no longer occurs.
The same table is in docs/reference/http-api.md ("Differences from daprd 1.16.5, measured").
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from duetime.app import create_app
from duetime.localdapr import Daprd, Scheduler
from duetime.settings import Settings

Body = dict[str, Any] | list[Any] | bytes | None
LATER = {"dueTime": "1h", "data": {"n": 1}}  # a valid job that does not fire during the test

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
    ("name at sign", "POST", "a@b", LATER),
    ("name hash", "POST", "a#b", LATER),
    ("name pipe", "POST", "a|b", LATER),
    ("name 253 chars", "POST", "n" * 253, LATER),
    ("name 254 chars", "POST", "n" * 254, LATER),
    ("name leading dot", "POST", ".lead", LATER),
    ("name padded", "POST", " padded ", LATER),
    ("get name padded as sent", "GET", " padded ", None),
    ("get name padded trimmed", "GET", "padded", None),
]


class _App(BaseHTTPRequestHandler):
    """daprd's app: answers every trigger 200 (none fire during the test)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def daprd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dapr")
    app = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    scheduler = Scheduler(root / "scheduler")
    sidecar = Daprd(
        root / "daprd",
        app_id="differential",
        app_port=app.server_address[1],
        scheduler_address=scheduler,
    )
    try:
        scheduler.start()
        sidecar.start(wait_for_app=True)
        yield sidecar.http_url
    finally:
        sidecar.stop()
        scheduler.stop()
        app.shutdown()
        app.server_close()


@pytest.fixture
async def duetime(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(data_dir=tmp_path / "duetime"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
            yield client


async def call(client: httpx.AsyncClient, method: str, name: str, body: Body) -> str:
    """The answer in one line: status and errorCode, or status and body for a 200 GET."""
    url = f"/v1.0-alpha1/jobs/{quote(name, safe='')}"
    if isinstance(body, bytes):
        headers = {"content-type": "application/json"}
        answer = await client.request(method, url, content=body, headers=headers)
    elif body is not None:
        answer = await client.request(method, url, json=body)
    else:
        answer = await client.request(method, url)
    if method == "GET" and answer.status_code == 200:
        return f"200 {json.dumps(answer.json(), sort_keys=True, ensure_ascii=False)}"
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
_INVALID = "a client's mistake is a 400 in duetime (daprd: 500)"
_MISSING = "a missing job is a 404 in duetime (daprd: 500)"
_RULE_1_18 = "duetime applies Dapr 1.18.3's name rule (go-etcd-cron v0.12.7), not 1.16.5's"
_DEFAULT = '"failurePolicy": {"constant": {"interval": "1s", "maxRetries": 3}}'


def _value(value: str) -> str:
    return '"data": {"@type": "type.googleapis.com/google.protobuf.Value", "value": ' + value + "}"


DIFFERENCES: dict[str, tuple[str, str, str]] = {
    "get deleted": (_G500, _G404, _MISSING),
    "get never created": (_G500, _G404, _MISSING),
    "get cron 5 fields": (_G500, _G404, _MISSING + " (the 5-field job was refused)"),
    "get name padded as sent": (
        _G500,
        _G404,
        _MISSING + "; both trim the name on POST only",
    ),
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
    "name hash": (_S500, _S400, _INVALID),
    "every with CRON_TZ": (
        "204",
        _S400,
        "duetime refuses CRON_TZ with @every, as Dapr 1.18.3 does (1.16.5 accepts it)",
    ),
    "get every with CRON_TZ": (
        "200 {"
        + _value("1")
        + ", "
        + _DEFAULT
        + ', "name": "everytz", "schedule": "CRON_TZ=UTC @every 1h"}',
        _G404,
        "follows from the previous row",
    ),
    "ttl in the past": (
        "204",
        _S400,
        "duetime refuses a job that expires before its first tick (daprd accepts a job"
        " that can never fire)",
    ),
    "get data null": (
        "200 {" + _value("null") + ', "dueTime": "1h", ' + _DEFAULT + ', "name": "null"}',
        '200 {"dueTime": "1h", ' + _DEFAULT + ', "name": "null"}',
        "duetime stores data null as no data, so GET leaves data out",
    ),
    "get no data": (
        "500 ERR_INTERNAL",
        '200 {"dueTime": "1h", ' + _DEFAULT + ', "name": "nodata"}',
        "daprd 1.16.5 stores a job without data that it can neither show nor deliver",
    ),
    "get data big integer": (
        "200 {"
        + _value("12345678901234567000")
        + ', "dueTime": "1h", '
        + _DEFAULT
        + ', "name": "bigint"}',
        "200 {"
        + _value("12345678901234567890")
        + ', "dueTime": "1h", '
        + _DEFAULT
        + ', "name": "bigint"}',
        "daprd passes numbers through float64; duetime keeps JSON numbers exact",
    ),
    "body over 4 MiB": (
        "400 ERR_BODY_READ",
        "413 ERR_BODY_READ",
        "duetime answers 413 Payload Too Large",
    ),
    "get constant without interval": (
        "200 {"
        + _value("1")
        + ', "dueTime": "1h", "failurePolicy": {"constant": {"maxRetries": 2}},'
        ' "name": "constnoint"}',
        "200 {"
        + _value("1")
        + ', "dueTime": "1h", "failurePolicy": {"constant": {"interval": "0s",'
        ' "maxRetries": 2}}, "name": "constnoint"}',
        "duetime shows the interval in effect, 0s (daprd leaves the unset field out)",
    ),
    "name non-ASCII": (_S500, "204", _RULE_1_18),
    "name at sign": (_S500, "204", _RULE_1_18),
    "name pipe": ("400 DAPR_SCHEDULER_JOB_NAME_EMPTY", "204", _RULE_1_18),
    "name 254 chars": (_S500, "204", _RULE_1_18),
    "name leading dot": (_S500, "204", _RULE_1_18),
}


async def test_same_calls_same_answers(daprd: str, duetime: httpx.AsyncClient) -> None:
    assert len({label for label, *_ in CALLS}) == len(CALLS)
    observed: dict[str, tuple[str, str]] = {}
    async with httpx.AsyncClient(base_url=daprd, timeout=30) as dapr:
        for label, method, name, body in CALLS:
            observed[label] = (
                await call(dapr, method, name, body),
                await call(duetime, method, name, body),
            )
    problems = []
    for label, (theirs, ours) in observed.items():
        listed = DIFFERENCES.get(label)
        if theirs == ours and listed is not None:
            problems.append(f"{label!r}: listed difference no longer occurs: both {theirs}")
        elif theirs != ours and listed is None:
            problems.append(f"{label!r}: unlisted difference: daprd {theirs} | duetime {ours}")
        elif theirs != ours and listed is not None and listed[:2] != (theirs, ours):
            problems.append(
                f"{label!r}: difference changed: daprd {theirs} | duetime {ours}"
                f" (listed: daprd {listed[0]} | duetime {listed[1]})"
            )
    assert not set(DIFFERENCES) - set(observed), "listed calls that are not in CALLS"
    assert not problems, "\n".join(problems)
