"""What the Dapr backend sends to daprd, and which names it refuses (daprd 1.16.5's rules)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from duetime.api.errors import install_error_handlers
from duetime.api.jobs import jobs_router
from duetime.jobs import FailurePolicy, Job
from duetime.jobs.dapr import DaprJobScheduler, DaprSidecar, dapr_body
from duetime.jobs.memory_store import MemoryJobStore
from duetime.jobs.names import JobNameError, check_job_name
from duetime.testing import serve_jobs
from tests.conftest import free_port


@pytest.mark.parametrize(
    "name",
    ["reminder-0f3a", "Capitals", "with_underscore", "a:b", "with space", "a.b.c", "x" * 253],
)
def test_names_daprd_accepts(name: str) -> None:
    check_job_name(name)


@pytest.mark.parametrize(
    "name", ["café", "a@b", "a#b", "a|b", "x" * 254, "trailing.", "a..b", "a/b"]
)
def test_names_daprd_refuses(name: str) -> None:
    with pytest.raises(JobNameError):
        check_job_name(name)


def test_data_is_always_sent_even_when_there_is_none() -> None:
    body = dapr_body(Job("j", due_time="5s"))
    assert "data" in body and body["data"] is None
    assert body == {
        "data": None,
        "dueTime": "5s",
        "failurePolicy": {"constant": {"interval": "1s", "maxRetries": 4}},
    }


def test_daprd_gets_one_retry_more_than_the_policy() -> None:
    def policy(p: FailurePolicy) -> object:
        return dapr_body(Job("j", schedule="@every 1s", failure_policy=p))["failurePolicy"]

    assert policy(FailurePolicy("constant", timedelta(seconds=5), 2)) == {
        "constant": {"interval": "5s", "maxRetries": 3}
    }
    assert policy(FailurePolicy("constant", timedelta(seconds=30), None)) == {
        "constant": {"interval": "30s"}
    }
    assert policy(FailurePolicy.drop()) == {"constant": {"interval": "1s", "maxRetries": 1}}


def test_every_field_is_passed_as_sent() -> None:
    job = Job("j", schedule="0 30 9 * * MON-FRI", due_time="PT1M", repeats=3, ttl="1h", data=[1])
    body = dapr_body(job)
    assert (body["schedule"], body["dueTime"], body["repeats"], body["ttl"], body["data"]) == (
        "0 30 9 * * MON-FRI",
        "PT1M",
        3,
        "1h",
        [1],
    )


async def test_jobs_api_answers_503_while_the_sidecar_is_away_and_keeps_nothing() -> None:
    scheduler = DaprJobScheduler(MemoryJobStore(), DaprSidecar(f"http://127.0.0.1:{free_port()}"))
    await scheduler.start()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(jobs_router())
    serve_jobs(app, scheduler)
    app.state.settings = SimpleNamespace(api_token=None, app_api_token=None)
    transport = httpx.ASGITransport(app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://duetime") as client:
            answer = await client.post("/v1.0/jobs/away", json={"dueTime": "1h", "data": 1})
            assert answer.status_code == 503, answer.text
            assert answer.json()["errorCode"] == "DUETIME_SIDECAR_UNAVAILABLE"
            assert "Traceback" not in answer.text
            assert (await client.get("/v1.0/jobs/away")).status_code == 404
    finally:
        await scheduler.stop()
