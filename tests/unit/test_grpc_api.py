"""The Dapr gRPC servicer and its conversions, with the in-memory engine and a fake call
context (no sockets): job data and failure policies to and from protobuf, status codes and
ErrorInfo of every refusal, callers told apart by token and app id, and UNIMPLEMENTED
naming the method for everything duetime does not serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import dapr.proto.runtime.v1 as api
import grpc
import pytest
from dapr.proto.common.v1 import common_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2, wrappers_pb2
from google.rpc import error_details_pb2, status_pb2

from duetime.jobs.grpc_app_channel import job_data_any
from duetime.jobs.model import FailurePolicy
from duetime.sidecar.apps import App, AppDirectory
from duetime.sidecar.grpc_jobs import (
    DataError,
    data_from_any,
    policy_from_proto,
    policy_to_proto,
)
from duetime.sidecar.grpc_server import DaprServicer
from duetime.sidecar.jobs import SidecarJobs
from duetime.testing import InMemoryJobScheduler

OPERATOR = "operator-token"
BILLING = "billing-token"


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, details: status_pb2.Status) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details = details

    @property
    def info(self) -> error_details_pb2.ErrorInfo:
        info = error_details_pb2.ErrorInfo()
        assert self.details.details and self.details.details[0].Unpack(info)
        return info


class FakeContext:
    """What the servicer uses of `grpc.aio.ServicerContext`."""

    def __init__(self, metadata: dict[str, str]) -> None:
        self._metadata = tuple(metadata.items())

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        status = status_pb2.Status()
        for key, value in trailing_metadata:
            if key == "grpc-status-details-bin":
                status.ParseFromString(value)
        assert status.code == code.value[0] and status.message == details
        raise Aborted(code, details, status)


def _ctx(token: str | None = OPERATOR, app_id: str | None = None) -> FakeContext:
    md = {}
    if token is not None:
        md["dapr-api-token"] = token
    if app_id is not None:
        md["dapr-app-id"] = app_id
    return FakeContext(md)


@pytest.fixture
async def servicer() -> AsyncIterator[DaprServicer]:
    scheduler = InMemoryJobScheduler()
    apps = AppDirectory(
        [
            App("app", "app||default||app||"),
            App("billing", "app||default||billing||", api_token=BILLING),
        ],
        default="app",
    )
    await scheduler.start()
    yield DaprServicer(apps, SidecarJobs(scheduler), namespace="default", operator_token=OPERATOR)
    await scheduler.stop()


def _value(v: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(_to_value(v))
    return packed


def _to_value(v: Any) -> struct_pb2.Value:
    from google.protobuf import json_format

    out = struct_pb2.Value()
    json_format.ParseDict(v, out)
    return out


# -- conversions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2.5, True, None, "ü"]}, "text", 3, -0.5, [], {}, None, 12345678],
)
def test_value_data_round_trips(value: Any) -> None:
    assert data_from_any(_value(value)) == value
    if value is not None:  # None is no data: an empty Any
        assert data_from_any(job_data_any(value)) == value


def test_whole_numbers_come_back_as_integers() -> None:
    assert data_from_any(_value(3.0)) == 3
    assert isinstance(data_from_any(_value(3.0)), int)


def test_empty_any_is_no_data_and_raw_json_bytes_are_json() -> None:
    assert data_from_any(any_pb2.Any()) is None
    assert data_from_any(any_pb2.Any(value=b'{"message": "hi"}')) == {"message": "hi"}
    assert job_data_any(None) == any_pb2.Any()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (any_pb2.Any(value=b"\xff\x00"), "UTF-8 JSON"),
        (any_pb2.Any(value=b"not json"), "UTF-8 JSON"),
        (any_pb2.Any(type_url="type.googleapis.com/google.protobuf.Value", value=b"\xff"), "Value"),
        (any_pb2.Any(type_url="type.googleapis.com/google.protobuf.Value"), "no kind"),
    ],
)
def test_data_duetime_cannot_store_is_refused(data: any_pb2.Any, words: str) -> None:
    with pytest.raises(DataError, match=words):
        data_from_any(data)


def test_other_any_types_are_refused_naming_the_type() -> None:
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.StringValue(value="hi"))
    with pytest.raises(DataError, match=r"google\.protobuf\.StringValue"):
        data_from_any(packed)


def test_failure_policies_both_ways() -> None:
    drop = common_pb2.JobFailurePolicy(drop=common_pb2.JobFailurePolicyDrop())
    assert policy_from_proto(drop) == FailurePolicy.drop()
    constant = common_pb2.JobFailurePolicy(
        constant=common_pb2.JobFailurePolicyConstant(
            interval=duration_pb2.Duration(seconds=1, nanos=500_000_000), max_retries=2
        )
    )
    assert policy_from_proto(constant) == FailurePolicy("constant", timedelta(seconds=1.5), 2)
    forever = common_pb2.JobFailurePolicy(constant=common_pb2.JobFailurePolicyConstant())
    assert policy_from_proto(forever) == FailurePolicy("constant", timedelta(0), None)
    assert policy_from_proto(common_pb2.JobFailurePolicy()) is None
    for policy in (FailurePolicy.drop(), FailurePolicy("constant", timedelta(seconds=1.5), 2)):
        assert policy_from_proto(policy_to_proto(policy)) == policy


# -- the servicer --------------------------------------------------------------------------


async def test_schedule_get_list_and_delete(servicer: DaprServicer) -> None:
    job = api.Job(name="j", schedule="@every 1h", repeats=2, data=_value({"k": "v"}))
    await servicer.ScheduleJob(api.ScheduleJobRequest(job=job), _ctx())
    got = await servicer.GetJobAlpha1(api.GetJobRequest(name="j"), _ctx())
    assert (got.job.name, got.job.schedule, got.job.repeats) == ("j", "@every 1h", 2)
    assert data_from_any(got.job.data) == {"k": "v"}
    assert got.job.failure_policy == policy_to_proto(FailurePolicy.default())
    listed = await servicer.ListJobsAlpha1(api.ListJobsRequestAlpha1(), _ctx())
    assert [j.name for j in listed.jobs] == ["j"]
    await servicer.DeleteJob(api.DeleteJobRequest(name="j"), _ctx())
    await servicer.DeleteJob(api.DeleteJobRequest(name="j"), _ctx())  # missing: OK
    with pytest.raises(Aborted) as caught:
        await servicer.GetJob(api.GetJobRequest(name="j"), _ctx())
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.info.reason == "DAPR_SCHEDULER_GET_JOB"
    assert dict(caught.value.info.metadata) == {"appID": "app", "namespace": "default"}


async def test_delete_by_prefix_touches_only_the_callers_jobs(servicer: DaprServicer) -> None:
    for name in ("a-1", "a-2", "b-1"):
        job = api.Job(name=name, due_time="1h")
        await servicer.ScheduleJobAlpha1(api.ScheduleJobRequest(job=job), _ctx())
    billing = _ctx(BILLING)
    await servicer.ScheduleJobAlpha1(
        api.ScheduleJobRequest(job=api.Job(name="a-9", due_time="1h")), billing
    )
    await servicer.DeleteJobsByPrefixAlpha1(
        api.DeleteJobsByPrefixRequestAlpha1(name_prefix="a-"), _ctx()
    )
    listed = await servicer.ListJobs(api.ListJobsRequest(), _ctx())
    assert [j.name for j in listed.jobs] == ["b-1"]
    theirs = await servicer.ListJobs(api.ListJobsRequest(), billing)
    assert [j.name for j in theirs.jobs] == ["a-9"]
    await servicer.DeleteJobsByPrefix(api.DeleteJobsByPrefixRequest(), _ctx())  # all
    assert not (await servicer.ListJobs(api.ListJobsRequest(), _ctx())).jobs


@pytest.mark.parametrize(
    ("request_", "code", "message", "reason"),
    [
        (api.ScheduleJobRequest(), "INVALID_ARGUMENT", "Job is empty", "DAPR_SCHEDULER_EMPTY"),
        (
            api.ScheduleJobRequest(job=api.Job(schedule="@every 1s")),
            "INVALID_ARGUMENT",
            "Name is empty",
            "DAPR_SCHEDULER_JOB_NAME_EMPTY",
        ),
        (
            api.ScheduleJobRequest(job=api.Job(name="x|y", schedule="@every 1s")),
            "INVALID_ARGUMENT",
            "Name is empty",
            "DAPR_SCHEDULER_JOB_NAME_EMPTY",
        ),
        (
            api.ScheduleJobRequest(job=api.Job(name="x")),
            "INVALID_ARGUMENT",
            "Schedule is empty",
            "DAPR_SCHEDULER_SCHEDULE_EMPTY",
        ),
        (
            api.ScheduleJobRequest(job=api.Job(name="x", schedule="* * * * *")),
            "INVALID_ARGUMENT",
            "failed to schedule job due to: ",
            "DAPR_SCHEDULER_SCHEDULE_JOB",
        ),
        (
            api.ScheduleJobRequest(job=api.Job(name="a@b", due_time="1h")),
            "INVALID_ARGUMENT",
            "failed to schedule job due to: job name",
            "DAPR_SCHEDULER_SCHEDULE_JOB",
        ),
        (
            api.ScheduleJobRequest(
                job=api.Job(name="x", due_time="1h", data=any_pb2.Any(value=b"nope"))
            ),
            "INVALID_ARGUMENT",
            "failed to schedule job due to: data",
            "DAPR_SCHEDULER_SCHEDULE_JOB",
        ),
    ],
)
async def test_bad_jobs_get_daprs_answers_and_store_nothing(
    servicer: DaprServicer, request_: api.ScheduleJobRequest, code: str, message: str, reason: str
) -> None:
    with pytest.raises(Aborted) as caught:
        await servicer.ScheduleJobAlpha1(request_, _ctx())
    assert caught.value.code.name == code
    assert caught.value.message.startswith(message)
    assert caught.value.info.reason == reason
    assert not (await servicer.ListJobsAlpha1(api.ListJobsRequestAlpha1(), _ctx())).jobs


async def test_a_taken_name_is_already_exists_unless_overwritten(servicer: DaprServicer) -> None:
    request = api.ScheduleJobRequest(job=api.Job(name="x", due_time="1h"))
    await servicer.ScheduleJob(request, _ctx())
    with pytest.raises(Aborted) as caught:
        await servicer.ScheduleJob(request, _ctx())
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    request.overwrite = True
    await servicer.ScheduleJob(request, _ctx())


@pytest.mark.parametrize(
    ("token", "app_id", "code", "why"),
    [
        (None, None, "UNAUTHENTICATED", "missing api token in request metadata"),
        ("wrong", None, "UNAUTHENTICATED", "authentication error: api token mismatch"),
        (BILLING, "app", "PERMISSION_DENIED", None),
        (OPERATOR, "nobody", "NOT_FOUND", None),
    ],
)
async def test_callers_are_checked_like_http(
    servicer: DaprServicer, token: str | None, app_id: str | None, code: str, why: str | None
) -> None:
    with pytest.raises(Aborted) as caught:
        await servicer.GetJobAlpha1(api.GetJobRequest(name="x"), _ctx(token, app_id))
    assert caught.value.code.name == code
    assert caught.value.message
    if why is not None:
        assert caught.value.message == "Unauthorized"
        assert caught.value.info.metadata["http.error_message"] == why


async def test_everything_else_is_unimplemented_naming_the_method(
    servicer: DaprServicer,
) -> None:
    with pytest.raises(Aborted) as caught:
        await servicer.GetState(api.GetStateRequest(store_name="s", key="k"), _ctx())
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "Dapr/GetState" in caught.value.message
    assert "Jobs and pub/sub" in caught.value.message
    with pytest.raises(Aborted) as caught:  # the token comes first, as on daprd
        await servicer.GetState(api.GetStateRequest(store_name="s", key="k"), _ctx("bad"))
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_publish_without_a_broker_is_unimplemented(servicer: DaprServicer) -> None:
    with pytest.raises(Aborted) as caught:
        await servicer.PublishEvent(api.PublishEventRequest(pubsub_name="p", topic="t"), _ctx())
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "PublishEvent" in caught.value.message
