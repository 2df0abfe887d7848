"""What the Dapr backend sends to daprd, and which names it refuses (daprd 1.16.5's rules)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from duetime.jobs import FailurePolicy, Job
from duetime.jobs.dapr import dapr_body, name_error


@pytest.mark.parametrize(
    "name",
    ["reminder-0f3a", "Capitals", "with_underscore", "a:b", "with space", "a.b.c", "x" * 253],
)
def test_names_daprd_accepts(name: str) -> None:
    assert name_error(name) is None


@pytest.mark.parametrize(
    "name", ["café", "a@b", "a#b", "a|b", "x" * 254, "trailing.", "a..b", "a/b"]
)
def test_names_daprd_refuses(name: str) -> None:
    assert name_error(name) is not None


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
