"""The Jobs calls of Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`), on `SidecarJobs`.

Answers as daprd 1.16.5 answers `ScheduleJobAlpha1`, `GetJobAlpha1` and `DeleteJobAlpha1`
(`pkg/api/universal/jobs.go`), and serves the names Dapr 1.18 added (`ScheduleJob`,
`GetJob`, `DeleteJob`, `ListJobs`, `DeleteJobsByPrefix` and the `ListJobsAlpha1` and
`DeleteJobsByPrefixAlpha1` of the 1.17 proto) the same way; daprd 1.16.5 answers those
UNIMPLEMENTED. Status codes, as the HTTP API maps them (docs/reference/dapr-compatibility.md):

| case                                    | daprd 1.16.5        | duetime            |
|-----------------------------------------|---------------------|--------------------|
| no `job`                                | INVALID_ARGUMENT    | INVALID_ARGUMENT   |
| empty name, or a `|` in it              | INVALID_ARGUMENT    | INVALID_ARGUMENT   |
| neither schedule nor due_time           | INVALID_ARGUMENT    | INVALID_ARGUMENT   |
| invalid cron, zone, duration, ttl, name | INTERNAL            | INVALID_ARGUMENT   |
| data that is not JSON (see below)       | accepted            | INVALID_ARGUMENT   |
| name taken, no overwrite                | ALREADY_EXISTS      | ALREADY_EXISTS     |
| get of a missing job                    | INTERNAL            | NOT_FOUND          |
| delete of a missing job                 | OK                  | OK                 |

Error messages and `ErrorInfo` reasons are daprd's (`Name is empty`, `failed to schedule
job due to: …`, `DAPR_SCHEDULER_SCHEDULE_JOB`, …).

Job data: duetime stores a job's data as JSON. A `google.protobuf.Value` Any (the SDK's
`Job(data=…)` packed as Dapr's HTTP API packs it) is its JSON value, exactly; an empty Any
(the SDK's job without data) is no data; an Any without a type URL whose bytes are UTF-8
JSON (the Python SDK's examples: `GrpcAny(value=json.dumps(…).encode())`) is that JSON
value, so it reaches an HTTP app as compact JSON and comes back from a get packed as a
`Value`. Any other Any (`StringValue`, `BytesValue`, a message of the app's) is refused:
daprd stores it and sends its protobuf bytes to an HTTP app.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta

import dapr.proto.runtime.v1 as pb
import grpc
from dapr.proto.common.v1 import common_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2

from duetime.jobs.grpc_app_channel import job_data_any
from duetime.jobs.model import JSON, FailurePolicy, Job, JobExistsError
from duetime.jobs.schedule import ScheduleEmptyError, ScheduleError
from duetime.sidecar.apps import App
from duetime.sidecar.jobs import SidecarJobs

VALUE_TYPE = "type.googleapis.com/google.protobuf.Value"
LIST_PAGE = 1000

# daprd's error codes (pkg/messages/errorcodes)
SCHEDULE_JOB = "DAPR_SCHEDULER_SCHEDULE_JOB"
SCHEDULE_EMPTY = "DAPR_SCHEDULER_SCHEDULE_EMPTY"
EMPTY = "DAPR_SCHEDULER_EMPTY"
JOB_NAME_EMPTY = "DAPR_SCHEDULER_JOB_NAME_EMPTY"
GET_JOB = "DAPR_SCHEDULER_GET_JOB"
DELETE_JOB = "DAPR_SCHEDULER_DELETE_JOB"


class RpcError(Exception):
    """An error answer: a gRPC status code, a message and, as daprd sends it, a
    `google.rpc.ErrorInfo` (domain `dapr.io`) with `reason` and `metadata`."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}


# -- data ----------------------------------------------------------------------------------


class DataError(ValueError):
    """Job data duetime cannot store as JSON."""


def data_from_any(data: any_pb2.Any) -> JSON:
    """The JSON value a job's `data` Any stands for (rules in the module docstring)."""
    if not data.type_url and not data.value:
        return None
    if data.type_url == VALUE_TYPE:
        value = struct_pb2.Value()
        try:
            value.ParseFromString(data.value)
        except Exception as exc:  # protobuf's DecodeError
            raise DataError(f"data is not a valid google.protobuf.Value: {exc}") from None
        return value_to_json(value)
    if not data.type_url:
        try:
            return json.loads(data.value.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise DataError(
                "data: an Any without a type URL must hold UTF-8 JSON bytes "
                "(or pack the data as google.protobuf.Value)"
            ) from None
    raise DataError(
        f"data of type {data.type_url!r}: duetime stores job data as JSON; pack it as "
        "google.protobuf.Value or send JSON bytes in an Any without a type URL"
    )


def value_to_json(value: struct_pb2.Value) -> JSON:
    kind = value.WhichOneof("kind")
    if kind is None:
        raise DataError("data is a google.protobuf.Value with no kind set")
    if kind == "null_value":
        return None
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise DataError(f"data holds {number}, which JSON cannot carry")
        # protojson prints a whole double without a fraction: 3, not 3.0
        return int(number) if number.is_integer() and abs(number) < 2**63 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: value_to_json(v) for k, v in value.struct_value.fields.items()}
    return [value_to_json(v) for v in value.list_value.values]


# -- failure policy --------------------------------------------------------------------------


def policy_from_proto(policy: common_pb2.JobFailurePolicy) -> FailurePolicy | None:
    kind = policy.WhichOneof("policy")
    if kind == "drop":
        return FailurePolicy.drop()
    if kind == "constant":
        constant = policy.constant
        interval = timedelta(
            seconds=constant.interval.seconds, microseconds=constant.interval.nanos // 1000
        )
        if interval < timedelta(0):
            raise ScheduleError(f"failure policy interval {interval} is negative")
        retries = constant.max_retries if constant.HasField("max_retries") else None
        return FailurePolicy("constant", interval, retries)
    return None


def policy_to_proto(policy: FailurePolicy) -> common_pb2.JobFailurePolicy:
    if policy.kind == "drop":
        return common_pb2.JobFailurePolicy(drop=common_pb2.JobFailurePolicyDrop())
    micros = policy.interval // timedelta(microseconds=1)
    constant = common_pb2.JobFailurePolicyConstant(
        interval=duration_pb2.Duration(seconds=micros // 1_000_000, nanos=micros % 1_000_000 * 1000)
    )
    if policy.max_retries is not None:
        constant.max_retries = policy.max_retries
    return common_pb2.JobFailurePolicy(constant=constant)


# -- jobs ------------------------------------------------------------------------------------


def job_from_proto(job: pb.Job) -> Job:
    """The domain job of a request (its data converted; raises `DataError`)."""
    return Job(
        name=job.name,
        schedule=job.schedule if job.HasField("schedule") else None,
        due_time=job.due_time if job.HasField("due_time") else None,
        repeats=job.repeats if job.HasField("repeats") else None,
        ttl=job.ttl if job.HasField("ttl") else None,
        data=data_from_any(job.data) if job.HasField("data") else None,
        failure_policy=(
            policy_from_proto(job.failure_policy) if job.HasField("failure_policy") else None
        ),
    )


def job_to_proto(job: Job) -> pb.Job:
    """A stored job as daprd's get shows it: fields as sent, data as a `Value` Any (an
    empty Any without data), the failure policy in effect (the default, constant 1s × 3,
    when none was set)."""
    out = pb.Job(name=job.name)
    if job.schedule is not None:
        out.schedule = job.schedule
    if job.repeats is not None:
        out.repeats = job.repeats
    if job.due_time is not None:
        out.due_time = job.due_time
    if job.ttl is not None:
        out.ttl = job.ttl
    # a job without data comes back with an empty Any, as daprd returns the SDK's job
    # without data (duetime keeps no data and `null` as one value)
    out.data.CopyFrom(job_data_any(job.data))
    out.failure_policy.CopyFrom(policy_to_proto(job.failure_policy or FailurePolicy.default()))
    return out


class GrpcJobs:
    """The Jobs calls, for the app a call acts for. Each raises `RpcError`."""

    def __init__(self, jobs: SidecarJobs, namespace: str) -> None:
        self._jobs = jobs
        self._namespace = namespace

    def _meta(self, app: App) -> dict[str, str]:
        return {"appID": app.app_id, "namespace": self._namespace}

    async def schedule(self, app: App, request: pb.ScheduleJobRequest) -> None:
        meta = self._meta(app)
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not request.HasField("job"):
            raise RpcError(invalid, "Job is empty", EMPTY, meta)
        job = request.job
        if not job.name or "|" in job.name:
            raise RpcError(invalid, "Name is empty", JOB_NAME_EMPTY, meta)
        if not job.HasField("schedule") and not job.HasField("due_time"):
            raise RpcError(invalid, "Schedule is empty", SCHEDULE_EMPTY, meta)
        try:
            domain = job_from_proto(job)
            await self._jobs.schedule(app, domain, overwrite=request.overwrite)
        except ScheduleEmptyError:
            raise RpcError(invalid, "Schedule is empty", SCHEDULE_EMPTY, meta) from None
        except (ScheduleError, DataError) as exc:
            message = f"failed to schedule job due to: {exc}"
            raise RpcError(invalid, message, SCHEDULE_JOB, meta) from None
        except JobExistsError as exc:
            message = f"failed to schedule job due to: {exc}"
            raise RpcError(grpc.StatusCode.ALREADY_EXISTS, message, SCHEDULE_JOB, meta) from None

    async def get(self, app: App, request: pb.GetJobRequest) -> pb.GetJobResponse:
        if not request.name:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT, "Name is empty", JOB_NAME_EMPTY, self._meta(app)
            )
        state = await self._jobs.get(app, request.name)
        if state is None:
            message = f"failed to get job due to: job not found: {request.name}"
            raise RpcError(grpc.StatusCode.NOT_FOUND, message, GET_JOB, self._meta(app))
        return pb.GetJobResponse(job=job_to_proto(state.job))

    async def delete(self, app: App, request: pb.DeleteJobRequest) -> None:
        if not request.name:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT, "Name is empty", JOB_NAME_EMPTY, self._meta(app)
            )
        await self._jobs.delete(app, request.name)

    async def delete_prefix(self, app: App, prefix: str) -> None:
        """Every job of the app whose name starts with `prefix` ("" or unset: all)."""
        await self._jobs.delete_prefix(app, prefix)

    async def list_all(self, app: App) -> list[pb.Job]:
        """Every job of the app, by name."""
        out: list[pb.Job] = []
        after = ""
        while True:
            states = await self._jobs.list_jobs(app, "", limit=LIST_PAGE, after=after)
            out.extend(job_to_proto(s.job) for s in states)
            if len(states) < LIST_PAGE:
                return out
            after = states[-1].job.name
