"""The public job-name rule (daprd 1.16.5's), and that the engine's own keys stay valid."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from duetime.jobs.model import Job
from duetime.jobs.names import JobNameError, JobNameSeparatorError, check_job_name
from duetime.jobs.schedule import ScheduleError, plan_job, validate_name
from duetime.jobs.scope import app_scope, internal

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "name",
    [
        "reminder-0f3a",
        "reminder-task-7",
        "MyJob",
        "my_job",
        "my:job",
        "my job",
        "a.b.c",
        "tenant:42.report_daily",
        "x" * 253,
        "-lead-dash",  # '-' is removed before the check
        "a-.b",  # becomes "a.b"
        "9",
        "a" * 200 + "-" * 100,  # 300 characters, 200 once '-' is removed
    ],
)
def test_names_daprd_takes_pass(name: str) -> None:
    check_job_name(name)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "must not be empty"),
        ("jöb", "found 'ö' (U+00F6)"),
        ("a@b", "found '@'"),
        ("a#b", "found '#'"),
        ("a/b", "found '/'"),
        ("a?b", "found '?'"),
        ("tab\there", "found U+0009, a control character"),
        ("new\nline", "found U+000A"),
        ("\u212a", "(U+212A)"),  # Kelvin sign: Go lower-cases it to "k"; we refuse it
        ("x" * 254, "got 254"),
        ("---", "needs a letter or digit"),
        ("_ :", "needs a letter or digit"),
        (".lead", "start and end"),
        ("trail.", "start and end"),
        ("a..b", "start and end"),
        ("a.-.b", "start and end"),  # becomes "a..b"
    ],
)
def test_names_daprd_refuses_fail_with_a_reason(name: str, says: str) -> None:
    with pytest.raises(JobNameError) as caught:
        check_job_name(name)
    assert not isinstance(caught.value, JobNameSeparatorError)
    assert says in str(caught.value)
    assert caught.value.field == "name" and caught.value.dapr_code == "DAPR_SCHEDULER_SCHEDULE_JOB"
    assert isinstance(caught.value, ScheduleError)


@pytest.mark.parametrize("name", ["a|b", "|", "app||default||other||x", "ok|", "jöb|"])
def test_a_pipe_is_daprds_job_name_empty(name: str) -> None:
    with pytest.raises(JobNameSeparatorError, match=re.escape("must not contain '|'")) as caught:
        check_job_name(name)
    assert caught.value.dapr_code == "DAPR_SCHEDULER_JOB_NAME_EMPTY"


def test_a_long_name_is_shown_shortened() -> None:
    with pytest.raises(JobNameError) as caught:
        check_job_name("y" * 1000)
    assert len(str(caught.value)) < 250


@pytest.mark.parametrize(
    "key",
    [
        internal("reminder-7"),
        internal("maintenance-retention"),
        app_scope("default", "app") + "reminder-7",
        app_scope("ns.1", "my-app") + "a.b:c d",
    ],
)
def test_engine_keys_with_scopes_stay_valid(key: str) -> None:
    # the public rule refuses them (they hold '||'); the engine must not
    with pytest.raises(JobNameSeparatorError):
        check_job_name(key)
    validate_name(key)
    plan = plan_job(Job(key, due_time="1s"), now=_NOW)
    assert plan.schedule is None
