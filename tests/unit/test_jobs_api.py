"""The jobs HTTP API: Dapr's routes as daprd v1.18.3 answers them, and duetime's additions.

Expected bodies and codes come from dapr/dapr v1.18.3 (`pkg/api/http/jobs.go`,
`pkg/api/universal/jobs.go`, `pkg/api/errors/scheduler.go`,
`tests/integration/suite/daprd/jobs/http/*.go`) and the facts page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from duetime.api.errors import install_error_handlers
from duetime.api.jobs import jobs_router
from duetime.clock import SystemClock
from duetime.jobs.handlers import DirectTriggers
from duetime.jobs.model import Answer, JobState
from duetime.jobs.scope import APP_SCOPES, app_scope
from duetime.sidecar.triggers import AppTriggers
from duetime.testing import InMemoryJobScheduler, RecordingHandler, serve_jobs
from duetime.timefmt import parse_rfc3339

MIB = 1 << 20
VALUE = "type.googleapis.com/google.protobuf.Value"
DEFAULT_POLICY = {"constant": {"interval": "1s", "maxRetries": 3}}
T = TypeVar("T")


@pytest.fixture
async def scheduler() -> AsyncIterator[InMemoryJobScheduler]:
    s = InMemoryJobScheduler()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def settings() -> SimpleNamespace:
    return SimpleNamespace(api_token=None, app_api_token=None)


@pytest.fixture
def app(scheduler: InMemoryJobScheduler, settings: SimpleNamespace) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(jobs_router())
    serve_jobs(app, scheduler)
    app.state.settings = settings
    app.state.trigger_sink = DirectTriggers(scheduler.handlers, SystemClock())
    return app


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {
        "errorCode": code,
        "message": body["message"],
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "domain": "dapr.io",
                "reason": code,
                "metadata": {},
            }
        ],
    }
    for fragment in fragments:
        assert fragment in body["message"]
    assert "Traceback" not in response.text


async def eventually(check: Callable[[], Awaitable[T | None]]) -> T:
    """Poll `check` over HTTP until it returns something, for at most 5 seconds."""
    for _ in range(250):
        if (result := await check()) is not None:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within 5 s")


# -- scheduling and reading back -------------------------------------------------------------


async def test_schedule_is_204_with_an_empty_body_and_get_echoes_the_job(
    api: httpx.AsyncClient,
) -> None:
    body = {
        "schedule": "@every 1m",
        "repeats": 123,
        "dueTime": "1000s",
        "ttl": "123s",
        "data": "hello world",
        "failurePolicy": {"constant": {"interval": "3s", "maxRetries": 5}},
    }
    r = await api.post("/v1.0/jobs/test", json=body)
    assert r.status_code == 204 and r.content == b""

    r = await api.get("/v1.0/jobs/test")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    got = r.json()
    assert got == {
        "name": "test",
        "schedule": "@every 1m",
        "repeats": 123,
        "dueTime": "1000s",
        "ttl": "123s",
        "data": {"@type": VALUE, "value": "hello world"},
        "failurePolicy": {"constant": {"interval": "3s", "maxRetries": 5}},
    }
    # protojson writes fields in proto order (runtime.v1.Job)
    assert list(got) == ["name", "schedule", "repeats", "dueTime", "ttl", "data", "failurePolicy"]


async def test_snake_case_keys_are_accepted_and_read_back_in_camel_case(
    api: httpx.AsyncClient,
) -> None:
    body = {
        "schedule": "@every 1m",
        "due_time": "10s",
        "failure_policy": {"constant": {"interval": "0.5s", "max_retries": 2}},
    }
    assert (await api.post("/v1.0/jobs/snake", json=body)).status_code == 204
    got = (await api.get("/v1.0/jobs/snake")).json()
    assert got["dueTime"] == "10s"
    assert got["failurePolicy"] == {"constant": {"interval": "0.500s", "maxRetries": 2}}


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        ({"a": 1, "b": [True, None]}, {"@type": VALUE, "value": {"a": 1, "b": [True, None]}}),
        ("hi", {"@type": VALUE, "value": "hi"}),
        ('"quoted"', {"@type": VALUE, "value": '"quoted"'}),
        (123, {"@type": VALUE, "value": 123}),
        (1.5, {"@type": VALUE, "value": 1.5}),
        ([1, "x"], {"@type": VALUE, "value": [1, "x"]}),
        (False, {"@type": VALUE, "value": False}),
    ],
)
async def test_get_wraps_data_as_a_protobuf_value(
    api: httpx.AsyncClient, data: Any, shown: dict[str, Any]
) -> None:
    assert (await api.post("/v1.0/jobs/d", json={"dueTime": "1h", "data": data})).status_code == 204
    assert (await api.get("/v1.0/jobs/d")).json()["data"] == shown


@pytest.mark.parametrize("body", [{"dueTime": "1h"}, {"dueTime": "1h", "data": None}])
async def test_get_shows_null_data_and_leaves_out_unset_fields(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert (await api.post("/v1.0/jobs/nodata", json=body)).status_code == 204
    got = (await api.get("/v1.0/jobs/nodata")).json()
    assert got == {
        "name": "nodata",
        "dueTime": "1h",
        "data": {"@type": VALUE, "value": None},
        "failurePolicy": DEFAULT_POLICY,
    }


@pytest.mark.parametrize(
    ("policy", "shown"),
    [
        (None, DEFAULT_POLICY),
        ({}, DEFAULT_POLICY),
        ({"drop": None}, DEFAULT_POLICY),
        ({"drop": {}}, {"drop": {}}),
        ({"constant": {"interval": "5s"}}, {"constant": {"interval": "5s"}}),
        ({"constant": {}}, {"constant": {"interval": "0s"}}),
        (
            {"constant": {"interval": "90s", "maxRetries": 0}},
            {"constant": {"interval": "90s", "maxRetries": 0}},
        ),
        ({"constant": {"interval": ".000001s"}}, {"constant": {"interval": "0.000001s"}}),
    ],
)
async def test_get_shows_the_failure_policy_in_effect(
    api: httpx.AsyncClient, policy: Any, shown: dict[str, Any]
) -> None:
    body = {"dueTime": "1h", "failurePolicy": policy}
    assert (await api.post("/v1.0/jobs/fp", json=body)).status_code == 204
    assert (await api.get("/v1.0/jobs/fp")).json()["failurePolicy"] == shown


@pytest.mark.parametrize("due", ["2030-01-01T09:00:00+02:00", "PT10S", "1h30m", "500ms"])
async def test_due_time_is_echoed_exactly_as_sent(api: httpx.AsyncClient, due: str) -> None:
    assert (await api.post("/v1.0/jobs/due", json={"dueTime": due})).status_code == 204
    assert (await api.get("/v1.0/jobs/due")).json()["dueTime"] == due


async def test_numbers_as_strings_and_whole_floats_are_uint32_like_protojson(
    api: httpx.AsyncClient,
) -> None:
    body = {
        "schedule": "@hourly",
        "repeats": "3",
        "failurePolicy": {"constant": {"maxRetries": 2.0}},
    }
    assert (await api.post("/v1.0/jobs/n", json=body)).status_code == 204
    got = (await api.get("/v1.0/jobs/n")).json()
    assert got["repeats"] == 3 and got["failurePolicy"]["constant"]["maxRetries"] == 2


async def test_unknown_keys_are_ignored_and_an_empty_name_key_is_allowed(
    api: httpx.AsyncClient,
) -> None:
    body = {
        "name": "",
        "dueTime": "1h",
        "metadata": {"x": [1, 2]},
        "failurePolicy": {"drop": {"why": "no"}, "other": 1},
    }
    assert (await api.post("/v1.0/jobs/unknown", json=body)).status_code == 204
    assert (await api.get("/v1.0/jobs/unknown")).json()["failurePolicy"] == {"drop": {}}


async def test_the_name_is_trimmed_as_daprd_does(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1.0/jobs/%20padded%20", json={"dueTime": "1h"})).status_code == 204
    assert (await api.get("/v1.0/jobs/padded")).json()["name"] == "padded"


async def test_existing_job_is_409_unless_overwrite(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1.0/jobs/o", json={"schedule": "@daily"})).status_code == 204
    for body in (
        {"schedule": "@weekly"},
        {"schedule": "@weekly", "overwrite": False},
        {"schedule": "@weekly", "overwrite": None},
    ):
        r = await api.post("/v1.0/jobs/o", json=body)
        assert_error(
            r, 409, "DAPR_SCHEDULER_SCHEDULE_JOB", "failed to schedule job due to:", "exists"
        )
    assert (await api.get("/v1.0/jobs/o")).json()["schedule"] == "@daily"

    body = {"schedule": "@weekly", "repeats": 3, "overwrite": True}
    assert (await api.post("/v1.0/jobs/o", json=body)).status_code == 204
    got = (await api.get("/v1.0/jobs/o")).json()
    assert got["schedule"] == "@weekly" and got["repeats"] == 3


async def test_get_of_a_missing_job_is_404(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1.0/jobs/notfound")
    assert_error(r, 404, "DAPR_SCHEDULER_GET_JOB", "failed to get job", "notfound")


async def test_delete_is_204_whether_or_not_the_job_exists(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1.0/jobs/gone", json={"dueTime": "1h"})).status_code == 204
    r = await api.delete("/v1.0/jobs/gone")
    assert r.status_code == 204 and r.content == b""
    assert (await api.get("/v1.0/jobs/gone")).status_code == 404
    assert (await api.delete("/v1.0/jobs/gone")).status_code == 204


async def test_alpha1_routes_are_the_same_jobs(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1.0-alpha1/jobs/a", json={"dueTime": "1h"})).status_code == 204
    assert (await api.get("/v1.0/jobs/a")).json()["dueTime"] == "1h"
    assert (await api.get("/v1.0-alpha1/jobs/a")).json()["name"] == "a"
    assert (await api.delete("/v1.0-alpha1/jobs/a")).status_code == 204
    assert (await api.get("/v1.0-alpha1/jobs/a")).status_code == 404


# -- bad input: always a 4xx saying what is wrong, never a 500, nothing stored ----------------

MALFORMED = "ERR_MALFORMED_REQUEST"
INVALID = "DAPR_SCHEDULER_SCHEDULE_JOB"
BAD_BODIES: list[tuple[str, bytes, str, str]] = [
    # (case, body, errorCode, fragment of the message)
    ("malformed JSON", b'{"dueTime": ', MALFORMED, "not valid JSON"),
    ("trailing garbage", b'{"dueTime": "1s"} x', MALFORMED, "not valid JSON"),
    ("whitespace only", b"   ", MALFORMED, "not valid JSON"),
    ("array body", b'[{"dueTime": "1s"}]', MALFORMED, "must be a JSON object, got an array"),
    ("string body", b'"1s"', MALFORMED, "must be a JSON object, got a string"),
    ("null body", b"null", MALFORMED, "must be a JSON object, got null"),
    ("not UTF-8", b'{"dueTime": "1s", "data": "\xff"}', MALFORMED, "UTF-8"),
    ("NaN", b'{"dueTime": "1s", "data": NaN}', MALFORMED, "NaN"),
    ("lone surrogate", b'{"dueTime": "1s", "data": "\\ud800"}', MALFORMED, "surrogate"),
    ("key twice", b'{"dueTime": "1s", "dueTime": "2s"}', MALFORMED, "duplicate key"),
    ("both spellings", b'{"dueTime": "1s", "due_time": "2s"}', MALFORMED, "dueTime and due_time"),
    (
        "too deep",
        b'{"dueTime": "1s", "data": ' + b"[" * 200 + b"]" * 200 + b"}",
        MALFORMED,
        "nested",
    ),
    ("schedule number", b'{"schedule": 5}', MALFORMED, "schedule: expected a string, got a number"),
    ("dueTime bool", b'{"dueTime": true}', MALFORMED, "dueTime: expected a string"),
    ("due_time object", b'{"due_time": {}}', MALFORMED, "due_time: expected a string"),
    ("ttl array", b'{"schedule": "@daily", "ttl": []}', MALFORMED, "ttl: expected a string"),
    (
        "repeats word",
        b'{"schedule": "@daily", "repeats": "x"}',
        MALFORMED,
        "repeats: expected a whole",
    ),
    ("repeats fraction", b'{"schedule": "@daily", "repeats": 1.5}', MALFORMED, "repeats"),
    ("repeats bool", b'{"schedule": "@daily", "repeats": true}', MALFORMED, "repeats"),
    ("repeats -1", b'{"schedule": "@daily", "repeats": -1}', MALFORMED, "repeats"),
    ("repeats 2**32", b'{"schedule": "@daily", "repeats": 4294967296}', MALFORMED, "repeats"),
    ("repeats padded", b'{"schedule": "@daily", "repeats": " 3"}', MALFORMED, "repeats"),
    (
        "overwrite word",
        b'{"dueTime": "1s", "overwrite": "yes"}',
        MALFORMED,
        "overwrite: expected true or false",
    ),
    ("overwrite number", b'{"dueTime": "1s", "overwrite": 1}', MALFORMED, "overwrite"),
    ("name number", b'{"dueTime": "1s", "name": 5}', MALFORMED, "name: expected a string"),
    (
        "policy string",
        b'{"dueTime": "1s", "failurePolicy": "drop"}',
        MALFORMED,
        "failurePolicy: expected a JSON object",
    ),
    (
        "drop number",
        b'{"dueTime": "1s", "failurePolicy": {"drop": 1}}',
        MALFORMED,
        "failurePolicy.drop",
    ),
    (
        "both policies",
        b'{"dueTime": "1s", "failurePolicy": {"drop": {}, "constant": {}}}',
        MALFORMED,
        "only one of drop and constant",
    ),
    (
        "interval Go duration",
        b'{"dueTime": "1s", "failurePolicy": {"constant": {"interval": "1m"}}}',
        MALFORMED,
        'interval: expected seconds with an "s" suffix',
    ),
    (
        "interval no unit",
        b'{"dueTime": "1s", "failure_policy": {"constant": {"interval": "5"}}}',
        MALFORMED,
        "failure_policy.constant.interval",
    ),
    (
        "interval number",
        b'{"dueTime": "1s", "failurePolicy": {"constant": {"interval": 5}}}',
        MALFORMED,
        "interval",
    ),
    (
        "interval leading zero",
        b'{"dueTime": "1s", "failurePolicy": {"constant": {"interval": "05s"}}}',
        MALFORMED,
        "interval",
    ),
    (
        "interval 10 digits",
        b'{"dueTime": "1s", "failurePolicy": {"constant": {"interval": "1.0000000001s"}}}',
        MALFORMED,
        "interval",
    ),
    (
        "maxRetries -1",
        b'{"dueTime": "1s", "failurePolicy": {"constant": {"maxRetries": -1}}}',
        MALFORMED,
        "maxRetries",
    ),
    (
        "max_retries word",
        b'{"dueTime": "1s", "failurePolicy": {"constant": {"max_retries": "lots"}}}',
        MALFORMED,
        "max_retries",
    ),
    (
        "name in body",
        b'{"dueTime": "1s", "name": "other"}',
        "DAPR_SCHEDULER_JOB_NAME",
        "Set the job name in the url only",
    ),
    ("empty body", b"", "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty"),
    ("empty object", b"{}", "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty"),
    (
        "only data",
        b'{"data": 1, "repeats": 1}',
        "DAPR_SCHEDULER_SCHEDULE_EMPTY",
        "Schedule is empty",
    ),
    (
        "nulls",
        b'{"schedule": null, "dueTime": null}',
        "DAPR_SCHEDULER_SCHEDULE_EMPTY",
        "Schedule is empty",
    ),
    (
        "unknown time zone",
        b'{"schedule": "CRON_TZ=Mars/Olympus 0 0 9 * * *"}',
        INVALID,
        "Mars/Olympus",
    ),
    ("5-field cron", b'{"schedule": "0 9 * * *"}', INVALID, "schedule"),
    ("words as cron", b'{"schedule": "every day"}', INVALID, "schedule"),
    ("zone before @every", b'{"schedule": "TZ=UTC @every 1s"}', INVALID, "schedule"),
    ("empty schedule", b'{"schedule": ""}', INVALID, "schedule"),
    ("bad @every", b'{"schedule": "@every 1 minute"}', INVALID, "schedule"),
    ("bad dueTime", b'{"dueTime": "tomorrow"}', INVALID, "dueTime"),
    ("bad ISO dueTime", b'{"dueTime": "P1X"}', INVALID, "dueTime"),
    ("bad ttl", b'{"schedule": "@daily", "ttl": "forever"}', INVALID, "ttl"),
    ("ttl without schedule", b'{"dueTime": "1s", "ttl": "1h"}', INVALID, "ttl"),
    (
        "ttl before dueTime",
        b'{"schedule": "@every 1s", "dueTime": "1h", "ttl": "2000-01-01T00:00:00Z"}',
        INVALID,
        "ttl",
    ),
    ("repeats 0", b'{"schedule": "@daily", "repeats": 0}', INVALID, "repeats"),
    ("repeats without schedule", b'{"dueTime": "1s", "repeats": 2}', INVALID, "repeats"),
    (
        "negative interval",
        b'{"dueTime": "1s", "failurePolicy": {"constant": {"interval": "-1s"}}}',
        INVALID,
        "interval",
    ),
]


@pytest.mark.parametrize(
    ("body", "code", "fragment"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
async def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    api: httpx.AsyncClient, body: bytes, code: str, fragment: str
) -> None:
    r = await api.post("/v1.0/jobs/bad", content=body, headers={"content-type": "application/json"})
    assert_error(r, 400, code, fragment)
    if code == MALFORMED:
        assert r.json()["message"].startswith("failed deserializing HTTP body: ")
    if code == INVALID:
        assert r.json()["message"].startswith("failed to schedule job due to: ")
    assert (await api.get("/v1.0/jobs/bad")).status_code == 404


@pytest.mark.parametrize(
    ("path", "name", "code", "fragment"),
    [
        ("x" * 401, "x" * 401, INVALID, "name"),
        ("a%23b", "a#b", INVALID, "name"),
        ("a%3Fb", "a?b", INVALID, "name"),
        ("a%5Cb", "a\\b", INVALID, "name"),
        ("a%0Ab", "a\nb", INVALID, "control"),
        ("%2E%2E", "..", INVALID, "name"),
        ("%20", " ", "DAPR_SCHEDULER_JOB_NAME_EMPTY", "Name is empty"),
    ],
)
async def test_an_over_long_or_illegal_name_is_400(
    api: httpx.AsyncClient, path: str, name: str, code: str, fragment: str
) -> None:
    r = await api.post(f"/v1.0/jobs/{path}", json={"dueTime": "1h"})
    assert_error(r, 400, code, fragment)
    assert (await api.get("/v1.0/jobs", params={"prefix": name.strip()[:1]})).json()["jobs"] == []


async def test_a_body_over_4_mib_is_413_by_content_length(api: httpx.AsyncClient) -> None:
    padding = "x" * (4 * MIB)
    r = await api.post("/v1.0/jobs/big", json={"dueTime": "1s", "data": padding})
    assert_error(r, 413, "ERR_BODY_READ", "4194304")
    assert (await api.get("/v1.0/jobs/big")).status_code == 404


async def test_a_body_over_4_mib_is_413_when_streamed_without_a_length(
    api: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"dueTime": "1s", "data": "'
        for _ in range(5):
            yield b"x" * MIB
        yield b'"}'

    r = await api.post("/v1.0/jobs/big", content=chunks())
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "ERR_BODY_READ")
    assert (await api.get("/v1.0/jobs/big")).status_code == 404


async def test_a_body_of_exactly_4_mib_is_accepted(api: httpx.AsyncClient) -> None:
    head, tail = b'{"dueTime": "1h", "data": "', b'"}'
    body = head + b"x" * (4 * MIB - len(head) - len(tail)) + tail
    assert len(body) == 4 * MIB
    assert (await api.post("/v1.0/jobs/big", content=body)).status_code == 204


# -- list ---------------------------------------------------------------------------------


async def test_list_filters_by_prefix_and_pages_by_name(api: httpx.AsyncClient) -> None:
    for name in ("a-3", "a-1", "b-1", "a-5", "a-2", "a-4"):
        assert (await api.post(f"/v1.0/jobs/{name}", json={"dueTime": "1h"})).status_code == 204
    pages, after = [], ""
    while True:
        r = await api.get("/v1.0/jobs", params={"prefix": "a-", "limit": 2, "after": after})
        assert r.status_code == 200
        page = r.json()
        pages.append([job["name"] for job in page["jobs"]])
        if page["next"] is None:
            break
        after = page["next"]
    assert pages == [["a-1", "a-2"], ["a-3", "a-4"], ["a-5"]]

    only = (await api.get("/v1.0/jobs", params={"prefix": "b-", "limit": 1})).json()
    assert [j["name"] for j in only["jobs"]] == ["b-1"] and only["next"] is None


async def test_listed_jobs_are_the_get_body_plus_engine_state(
    api: httpx.AsyncClient, scheduler: InMemoryJobScheduler
) -> None:
    body = {"dueTime": "2030-01-01T00:00:00Z", "data": {"k": "v"}}
    assert (await api.post("/v1.0/jobs/listed", json=body)).status_code == 204
    [job] = (await api.get("/v1.0/jobs")).json()["jobs"]
    assert job == {
        **(await api.get("/v1.0/jobs/listed")).json(),
        "nextFireTime": "2030-01-01T00:00:00Z",
        "attempt": 0,
        "fired": 0,
    }
    state = await scheduler.get(app_scope("default", "app") + "listed")
    assert isinstance(state, JobState) and state.fired == 0


async def test_the_list_shows_404s_of_the_app_the_get_body_stays_daprds(
    api: httpx.AsyncClient, scheduler: InMemoryJobScheduler
) -> None:
    app = RecordingHandler(answer=Answer.APP_NOT_FOUND)
    scheduler.add_handler(APP_SCOPES, AppTriggers({"app": app}))
    assert (await api.post("/v1.0/jobs/gone", json={"schedule": "@every 100ms"})).status_code == 204
    got = (await api.get("/v1.0/jobs/gone")).json()

    async def counted() -> dict[str, Any] | None:
        [job] = (await api.get("/v1.0/jobs")).json()["jobs"]
        return job if "appNotFound" in job and job["appNotFound"]["count"] >= 2 else None

    job = await eventually(counted)
    state = await scheduler.get(app_scope("default", "app") + "gone")
    assert state is not None and state.app_not_found_at is not None
    assert set(job["appNotFound"]) == {"count", "last"}
    assert parse_rfc3339(job["appNotFound"]["last"]) <= state.app_not_found_at
    assert (await api.get("/v1.0/jobs/gone")).json() == got  # no appNotFound: Dapr's body


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=-1", "limit=ten"])
async def test_list_rejects_a_bad_limit_with_400(api: httpx.AsyncClient, query: str) -> None:
    for path in ("/v1.0/jobs", "/v1.0/deadletters"):
        assert_error(await api.get(f"{path}?{query}"), 400, "ERR_MALFORMED_REQUEST", "limit")


# -- dead letters ----------------------------------------------------------------------------


async def _dead_letter(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    body = {"dueTime": "0s", "data": {"n": 1}, "failurePolicy": {"drop": {}}}
    assert (await api.post(f"/v1.0/jobs/{name}", json=body)).status_code == 204

    async def found() -> dict[str, Any] | None:
        page = (await api.get("/v1.0/deadletters", params={"prefix": name})).json()
        return page["deadLetters"][0] if page["deadLetters"] else None

    return await eventually(found)


async def test_dead_letters_are_listed_replayed_and_discarded(
    api: httpx.AsyncClient, scheduler: InMemoryJobScheduler
) -> None:
    failing = {"on": True}
    handler = RecordingHandler(fail=lambda trigger: failing["on"])
    scheduler.add_handler(APP_SCOPES, AppTriggers({"app": handler}))

    letter = await _dead_letter(api, "doomed")
    assert letter["name"] == "doomed" and letter["data"] == {"n": 1}
    assert letter["attempts"] == 1 and "handler refused doomed" in letter["error"]
    assert letter["scheduledTime"].endswith("Z") and letter["failedTime"].endswith("Z")
    assert list(letter) == [
        "id",
        "name",
        "data",
        "scheduledTime",
        "failedTime",
        "attempts",
        "error",
    ]
    assert (await api.get("/v1.0/jobs/doomed")).status_code == 404  # one-shot, gone

    r = await api.post(f"/v1.0/deadletters/{letter['id']}/replay")
    assert_error(r, 502, "DUETIME_REPLAY_FAILED", "handler refused doomed")
    [kept] = (await api.get("/v1.0/deadletters")).json()["deadLetters"]
    assert kept["id"] == letter["id"] and kept["attempts"] == 2

    failing["on"] = False
    r = await api.post(f"/v1.0/deadletters/{letter['id']}/replay")
    assert r.status_code == 200 and r.json() == {"delivered": True}
    assert handler.names() == ["doomed", "doomed", "doomed"]
    assert (await api.get("/v1.0/deadletters")).json() == {"deadLetters": [], "next": None}
    r = await api.post(f"/v1.0/deadletters/{letter['id']}/replay")
    assert_error(r, 404, "DUETIME_DEAD_LETTER_NOT_FOUND")

    failing["on"] = True
    other = await _dead_letter(api, "discarded")
    assert (await api.delete(f"/v1.0/deadletters/{other['id']}")).status_code == 204
    assert (await api.get("/v1.0/deadletters")).json()["deadLetters"] == []
    assert_error(
        await api.delete(f"/v1.0/deadletters/{other['id']}"), 404, "DUETIME_DEAD_LETTER_NOT_FOUND"
    )


async def test_dead_letters_page(api: httpx.AsyncClient, scheduler: InMemoryJobScheduler) -> None:
    scheduler.add_handler(
        APP_SCOPES, AppTriggers({"app": RecordingHandler(fail=lambda trigger: True)})
    )
    ids = [(await _dead_letter(api, f"dl-{i}"))["id"] for i in range(3)]
    first = (await api.get("/v1.0/deadletters", params={"limit": 2})).json()
    assert [d["id"] for d in first["deadLetters"]] == ids[:2] and first["next"] == ids[1]
    rest = (await api.get("/v1.0/deadletters", params={"limit": 2, "after": first["next"]})).json()
    assert [d["id"] for d in rest["deadLetters"]] == ids[2:] and rest["next"] is None


# -- auth ---------------------------------------------------------------------------------


async def test_without_a_configured_token_no_header_is_needed(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1.0/jobs/open", json={"dueTime": "1h"})).status_code == 204


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"dapr-api-token": "wrong"},
        {"authorization": "Bearer wrong"},
        {"authorization": "s3cret"},
        {"authorization": "Basic czNjcmV0"},
    ],
)
async def test_a_configured_token_is_required(
    api: httpx.AsyncClient, settings: SimpleNamespace, headers: dict[str, str]
) -> None:
    settings.api_token = "s3cret"
    for method, path in (
        ("POST", "/v1.0/jobs/x"),
        ("GET", "/v1.0/jobs/x"),
        ("DELETE", "/v1.0/jobs/x"),
        ("GET", "/v1.0/jobs"),
        ("GET", "/v1.0/deadletters"),
        ("POST", "/v1.0/deadletters/x/replay"),
        ("DELETE", "/v1.0/deadletters/x"),
    ):
        r = await api.request(method, path, json={"dueTime": "1h"}, headers=headers)
        assert_error(r, 401, "ERR_UNAUTHORIZED", "invalid api token")
        assert r.headers["www-authenticate"] == "Bearer"
    assert (await api.get("/v1.0/jobs")).status_code == 401


@pytest.mark.parametrize(
    "headers", [{"dapr-api-token": "s3cret"}, {"authorization": "Bearer s3cret"}]
)
async def test_either_header_form_carries_the_token(
    api: httpx.AsyncClient, settings: SimpleNamespace, headers: dict[str, str]
) -> None:
    settings.api_token = "s3cret"
    assert (
        await api.post("/v1.0/jobs/x", json={"dueTime": "1h"}, headers=headers)
    ).status_code == 204
    assert (await api.get("/v1.0/jobs/x", headers=headers)).status_code == 200


async def test_auth_is_checked_before_the_body_is_read(
    api: httpx.AsyncClient, settings: SimpleNamespace
) -> None:
    settings.api_token = "s3cret"
    r = await api.post("/v1.0/jobs/big", content=b"x" * (5 * MIB))
    assert r.status_code == 401


# -- unexpected failures -----------------------------------------------------------------------


class _BrokenScheduler(InMemoryJobScheduler):
    async def get(self, name: str) -> JobState | None:
        raise RuntimeError("database password is hunter2")


async def test_an_unexpected_error_is_a_generic_500(
    app: FastAPI, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    serve_jobs(app, _BrokenScheduler())
    r = await api.get("/v1.0/jobs/x")
    assert_error(r, 500, "ERR_INTERNAL", "internal error")
    assert "hunter2" not in r.text
    assert "hunter2" in caplog.text  # logged server-side


def test_dapr_routes_never_document_fastapis_422(app: FastAPI) -> None:
    spec = json.dumps(app.openapi()["paths"])
    assert '"422"' not in spec


async def test_router_404_and_405_answer_in_daprs_error_shape(api: httpx.AsyncClient) -> None:
    """The router's own answers, not only the routes', carry duetime's error body."""
    wrong_method = await api.put("/v1.0/jobs/m1", json={"dueTime": "1s"})
    assert_error(wrong_method, 405, "ERR_METHOD_NOT_ALLOWED", "PUT /v1.0/jobs/m1", "POST")
    assert "POST" in wrong_method.headers["allow"]
    unknown = await api.get("/v1.0-alpha1/jobs")
    assert_error(unknown, 404, "ERR_NOT_FOUND", "no route for GET /v1.0-alpha1/jobs")


async def test_task_api_keeps_its_own_error_shape_for_router_answers(app: FastAPI) -> None:
    from fastapi import APIRouter, HTTPException

    router = APIRouter()

    @router.get("/api/things/{n}")
    async def thing(n: int) -> dict[str, int]:
        raise HTTPException(404, detail="thing not found")

    app.include_router(router)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
        own = await client.get("/api/things/1")
        assert (own.status_code, own.json()) == (404, {"detail": "thing not found"})
        unknown = await client.get("/api/nope")
        assert (unknown.status_code, unknown.json()) == (
            404,
            {"detail": "no route for GET /api/nope"},
        )
        wrong = await client.delete("/api/things/1")
        assert wrong.status_code == 405
        assert wrong.json() == {"detail": "method not allowed: DELETE /api/things/1; allowed: GET"}
