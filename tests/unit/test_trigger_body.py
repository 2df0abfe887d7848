"""What a trigger carries to an HTTP app, byte for byte as daprd 1.16.5 sends it (measured:
tests/integration/test_dapr_differential.py), and the data the Jobs API takes and shows."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from duetime.api.errors import install_error_handlers
from duetime.api.jobs import jobs_router
from duetime.jobs.app_channel import (
    AppDeliveryError,
    HttpAppChannel,
    NotFoundRule,
    encode_data,
    go_float,
)
from duetime.jobs.model import Answer, Trigger
from duetime.testing import InMemoryJobScheduler, serve_jobs

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "sent"),
    [
        (None, b"null"),  # data: null, and a job without data
        ("plain", b'"plain"'),
        (1, b"1"),
        (True, b"true"),
        ([], b"[]"),
        ({}, b"{}"),
        # measured on daprd 1.16.5 (its protojson also adds spaces after some ',' and ':')
        (
            {"b": 1, "a": {"z": 1, "y": [3, {"d": 1, "c": 2}]}, "B": 0, "é": 1},
            '{"B":0,"a":{"y":[3,{"c":2,"d":1}],"z":1},"b":1,"é":1}'.encode(),
        ),
        (
            {"s": "héllo ☃ 😀", "ctl": "a\u0001b\u007f\u2028", "html": "<&>", "q": '"\\'},
            '{"ctl":"a\\u0001b\u007f\u2028","html":"<&>","q":"\\"\\\\","s":"héllo ☃ 😀"}'.encode(),
        ),
        (
            [2.0, -0.0, 0.0, 1e-7, 1e-5, 1.5e16, 1e20, 1e21, 1.2345678901234567e19, 0.1],
            b"[2,-0,0,1e-7,0.00001,15000000000000000,100000000000000000000,1e+21,"
            b"12345678901234567000,0.1]",
        ),
        # the one deliberate difference: integers stay exact (daprd: 12345678901234567000)
        (12345678901234567890, b"12345678901234567890"),
        (9007199254740993, b"9007199254740993"),
    ],
)
def test_data_is_sent_as_daprd_sends_it(data: Any, sent: bytes) -> None:
    assert encode_data(data) == sent


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1e-300, "1e-300"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (1.5e-7, "1.5e-7"),
        (-1e-7, "-1e-7"),
        (1e-6, "0.000001"),
        (2.5e21, "2.5e+21"),
        (123456789.123, "123456789.123"),
        (-2.0, "-2"),
    ],
)
def test_floats_are_written_as_go_writes_a_float64(number: float, text: str) -> None:
    assert go_float(number) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_reads_back_the_same(number: float) -> None:
    text = go_float(number)
    assert float(text) == number and math.copysign(1, float(text)) == math.copysign(1, number)
    assert ("e" in text) == (number != 0 and not 1e-6 <= abs(number) < 1e21)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_without_floats_it_is_compact_sorted_utf8_json(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert encode_data(value) == expected.encode("utf-8")


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, [1, {"x": math.inf}]])
def test_a_non_finite_float_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        encode_data(bad)


def test_a_deep_value_does_not_recurse() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    assert encode_data(deep) == b"[" * 5000 + b"1" + b"]" * 5000


class _Recorder:
    def __init__(self, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status)


async def _deliver(
    name: str, data: Any, status: int = 200, not_found: NotFoundRule = "success"
) -> httpx.Request:
    request, _ = await _call(name, data, status, not_found)
    return request


async def _call(
    name: str, data: Any, status: int = 200, not_found: NotFoundRule = "success"
) -> tuple[httpx.Request, Answer | None]:
    recorder = _Recorder(status)
    channel = HttpAppChannel("http://app.test/", token="apptok", not_found=not_found)
    channel._client = httpx.AsyncClient(  # the same client, over a recording transport
        base_url="http://app.test",
        headers=channel._client.headers,
        transport=httpx.MockTransport(recorder),
    )
    try:
        trigger = Trigger(name, data, scheduled_at=AT, fired_at=AT, attempt=2, late=True)
        answer = await channel(trigger)
    finally:
        await channel.aclose()
    (request,) = recorder.requests
    return request, answer


async def test_the_request_is_daprds_plus_three_headers() -> None:
    request = await _deliver("my job", {"b": "é", "a": 2.0})
    assert request.method == "POST"
    assert request.url.raw_path == b"/job/my%20job"
    assert request.content == '{"a":2,"b":"é"}'.encode()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(request.content))
    assert request.headers["dapr-api-token"] == "apptok"
    assert request.headers["duetime-scheduled-time"] == "2026-03-04T05:06:07Z"
    assert request.headers["duetime-attempt"] == "2"
    assert request.headers["duetime-late"] == "true"


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a:b", b"/job/a:b"),  # as daprd (Go's path escaping leaves ':' alone)
        ("Caps_x.y-z~", b"/job/Caps_x.y-z~"),
        ("a/b", b"/job/a%2Fb"),  # one path segment, whatever the engine's name holds
        ("app||ns||id||x", b"/job/app%7C%7Cns%7C%7Cid%7C%7Cx"),
        ("jöb?#%", b"/job/j%C3%B6b%3F%23%25"),
    ],
)
async def test_the_name_is_escaped_as_daprd_escapes_it(name: str, path: bytes) -> None:
    assert (await _deliver(name, None)).url.raw_path == path


async def test_a_job_without_data_sends_null() -> None:
    request = await _deliver("nodata", None)
    assert request.content == b"null" and request.headers["content-length"] == "4"


@pytest.mark.parametrize("status", [200, 204, 299, 404])
async def test_2xx_and_404_are_success(status: int) -> None:
    await _deliver("j", 1, status)


@pytest.mark.parametrize(("status", "answer"), [(200, None), (404, Answer.APP_NOT_FOUND)])
async def test_a_404_is_answered_apart_for_the_engine_to_count(
    status: int, answer: Answer | None
) -> None:
    assert (await _call("j", 1, status))[1] is answer


async def test_a_404_is_logged_with_the_job_it_dropped(caplog: pytest.LogCaptureFixture) -> None:
    await _deliver("standup", 1, 404)
    [record] = [r for r in caplog.records if r.name == "duetime.jobs.app_channel"]
    assert record.levelname == "WARNING"
    message = record.getMessage()
    assert "job 'standup' (attempt 2): the app answered 404" in message
    assert "dropped as delivered" in message and "DUETIME_APP_404=failure" in message


async def test_with_app_404_failure_a_404_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(AppDeliveryError, match=r"app answered 404: .*DUETIME_APP_404=failure"):
        await _deliver("standup", 1, 404, not_found="failure")
    assert "counted as a failure" in caplog.text


@pytest.mark.parametrize("status", [301, 400, 409, 500, 503])
async def test_other_answers_are_failures(status: int) -> None:
    with pytest.raises(AppDeliveryError, match=f"app answered {status}"):
        await _deliver("j", 1, status)


# -- the Jobs API: data daprd refuses is refused; GET shows data as daprd does -------------


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    scheduler = InMemoryJobScheduler()
    await scheduler.start()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(jobs_router())
    serve_jobs(app, scheduler)
    app.state.settings = SimpleNamespace(api_token=None, app_api_token=None)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
        yield client
    await scheduler.stop()


@pytest.mark.parametrize(
    "data",
    [b"1e400", b"-1e400", b'[1, {"x": 1e309}]', b"1" + b"0" * 400, b"-" + b"9" * 320],
)
async def test_a_number_beyond_float64_is_a_400_and_stores_nothing(
    api: httpx.AsyncClient, data: bytes
) -> None:
    body = b'{"dueTime": "1h", "data": ' + data + b"}"
    r = await api.post("/v1.0/jobs/big", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    assert "float64" in r.json()["message"] and "data" in r.json()["message"]
    assert (await api.get("/v1.0/jobs/big")).status_code == 404


async def test_get_shows_data_as_daprd_does(api: httpx.AsyncClient) -> None:
    body = b'{"dueTime": "1h", "data": {"b": [2.0, 1e-5, -0.0], "a": 12345678901234567890}}'
    r = await api.post("/v1.0/jobs/d", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 204
    got = (await api.get("/v1.0/jobs/d")).json()["data"]
    assert got["value"] == {"a": 12345678901234567890, "b": [2, 1e-5, 0]}
    assert list(got["value"]) == ["a", "b"]
    assert isinstance(got["value"]["b"][0], int)


async def test_a_number_at_the_edge_of_float64_is_taken(api: httpx.AsyncClient) -> None:
    body = b'{"dueTime": "1h", "data": [1.7976931348623157e308, 5e-324, 1e-400]}'
    r = await api.post(
        "/v1.0/jobs/edge", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 204, r.text


async def test_an_app_that_closes_the_connection_gets_a_reason_not_an_empty_message() -> None:
    import asyncio

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()  # read the request, answer nothing

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = HttpAppChannel(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(AppDeliveryError) as caught:
            await channel(Trigger("j", None, scheduled_at=AT, fired_at=AT))
    finally:
        await channel.aclose()
        server.close()
        await server.wait_closed()
    message = str(caught.value)
    assert message.startswith("app unreachable: RemoteProtocolError")
    assert not message.endswith(": ")
    assert "closed the connection" in message or "disconnected" in message, message
