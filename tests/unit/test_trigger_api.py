"""`POST /job/{name}`: triggers from a Dapr sidecar, handed to the registered handlers.

The request is what daprd's HTTP app channel sends (`pkg/channel/http/http_channel.go`):
the job's data as the raw JSON body, empty without data, `dapr-api-token` with
`APP_API_TOKEN`. daprd treats 2xx and 404 as done and anything else as a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from duetime.api.errors import install_error_handlers
from duetime.api.triggers import trigger_router
from duetime.jobs.handlers import DirectTriggers, HandlerRegistry
from duetime.jobs.scope import internal
from duetime.testing import RecordingHandler

NOW = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW

    def now_micros(self) -> int:
        return int(NOW.timestamp() * 1_000_000)


@pytest.fixture
def ok() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def broken() -> RecordingHandler:
    return RecordingHandler(fail=lambda trigger: True)


@pytest.fixture
def settings() -> SimpleNamespace:
    return SimpleNamespace(api_token=None, app_api_token=None)


@pytest.fixture
async def app_client(
    ok: RecordingHandler, broken: RecordingHandler, settings: SimpleNamespace
) -> AsyncIterator[httpx.AsyncClient]:
    sink = HandlerRegistry()
    # `POST /job/{name}` from duetime's own sidecar: the names of duetime's own jobs
    sink.add(internal("ok-"), ok)
    sink.add(internal("broken-"), broken)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(trigger_router())
    app.state.trigger_sink = DirectTriggers(sink, FixedClock())
    app.state.settings = settings
    app.state.clock = FixedClock()
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errorCode"] == code and body["details"][0]["reason"] == code
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "data"),
    [
        (b'{"msg":"hi"}', {"msg": "hi"}),
        (b'"someData"', "someData"),
        (b'"\\"xyz\\""', '"xyz"'),
        (b"123", 123),
        (b"[1,2]", [1, 2]),
        (b"null", None),
        (b"", None),
    ],
)
async def test_a_trigger_is_delivered_to_the_owning_handler_with_200(
    app_client: httpx.AsyncClient, ok: RecordingHandler, body: bytes, data: object
) -> None:
    r = await app_client.post(
        "/job/ok-1", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 200
    [trigger] = ok.triggers
    assert trigger.name == internal("ok-1") and trigger.data == data
    assert trigger.scheduled_at == trigger.fired_at == NOW
    assert trigger.attempt == 1 and not trigger.late


async def test_a_name_no_handler_owns_is_404_so_dapr_does_not_retry(
    app_client: httpx.AsyncClient, ok: RecordingHandler
) -> None:
    r = await app_client.post("/job/stranger", json=1)
    assert_error(r, 404, "DUETIME_NO_HANDLER")
    assert "stranger" in r.json()["message"]
    assert ok.triggers == []


async def test_a_failing_handler_is_500_so_dapr_retries(
    app_client: httpx.AsyncClient, broken: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    r = await app_client.post("/job/broken-1", json={"n": 1})
    assert_error(r, 500, "DUETIME_HANDLER_FAILED")
    assert "handler refused" not in r.text  # the handler's error stays in the server log
    assert "handler refused duetime||broken-1" in caplog.text
    assert [t.data for t in broken.triggers] == [{"n": 1}]


async def test_a_body_that_is_not_json_is_400(
    app_client: httpx.AsyncClient, ok: RecordingHandler
) -> None:
    r = await app_client.post("/job/ok-1", content=b"{not json")
    assert_error(r, 400, "ERR_MALFORMED_REQUEST")
    assert ok.triggers == []


async def test_a_body_over_4_mib_is_413(
    app_client: httpx.AsyncClient, ok: RecordingHandler
) -> None:
    r = await app_client.post("/job/ok-1", content=b'"' + b"x" * (4 << 20) + b'"')
    assert_error(r, 413, "ERR_BODY_READ")
    assert ok.triggers == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"dapr-api-token": "wrong"},
        {"authorization": "Bearer app-secret"},  # daprd only sends dapr-api-token
    ],
)
async def test_with_an_app_token_set_a_request_without_it_is_401(
    app_client: httpx.AsyncClient,
    settings: SimpleNamespace,
    ok: RecordingHandler,
    headers: dict[str, str],
) -> None:
    settings.app_api_token = "app-secret"
    r = await app_client.post("/job/ok-1", json=1, headers=headers)
    assert_error(r, 401, "ERR_UNAUTHORIZED")
    assert ok.triggers == []


async def test_with_an_app_token_set_the_sidecars_header_is_accepted(
    app_client: httpx.AsyncClient, settings: SimpleNamespace, ok: RecordingHandler
) -> None:
    settings.app_api_token = "app-secret"
    r = await app_client.post("/job/ok-1", json=1, headers={"dapr-api-token": "app-secret"})
    assert r.status_code == 200 and len(ok.triggers) == 1


async def test_the_jobs_api_token_does_not_guard_the_trigger_route(
    app_client: httpx.AsyncClient, settings: SimpleNamespace
) -> None:
    settings.api_token = "api-secret"
    assert (await app_client.post("/job/ok-1", json=1)).status_code == 200
