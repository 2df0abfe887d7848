"""Request and response bodies of the jobs API, shaped as daprd's protojson.

Decoding mirrors Go's protojson on daprd's `JobHTTPRequest` (dapr
`dapr/proto/internals/v1/jobs.proto`): each field under its JSON name or its proto name,
unknown keys ignored, `null` meaning "not set", `repeats`/`maxRetries` as uint32 (a JSON
number or a string holding one, with a whole value), `interval` as a protobuf Duration
string. Encoding mirrors protojson on `runtime.v1.Job`: fields in proto order, unset ones
left out, `data` as an `Any` holding a `google.protobuf.Value` (object keys sorted, floats
as Go writes them: `duetime.jobs.app_channel.encode_data`).

`data` is any JSON value daprd takes: a number must fit a float64 (`1e400` is a 400, as on
daprd), but integers are kept exact where daprd rounds them (`12345678901234567890` stays
so). `data: null` and no `data` are the same job, delivered as `null` and shown as
`"value": null` (daprd 1.16.5 delivers `null` for the first and never delivers the second).
"""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from duetime.jobs.app_channel import encode_data
from duetime.jobs.model import JSON, DeadLetter, FailurePolicy, Job, JobState
from duetime.timefmt import format_rfc3339

VALUE_TYPE = "type.googleapis.com/google.protobuf.Value"
UINT32_MAX = 2**32 - 1
_MAX_DURATION_SECONDS = 315_576_000_000  # protojson's bound, about 10,000 years
_PROTO_DURATION = re.compile(r"([+-]?)(?=[0-9.])(0|[1-9][0-9]*)?(?:\.([0-9]{0,9}))?s")


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:40] + "…"


def _uint32(value: object) -> int:
    number: object = value
    if isinstance(value, str) and value == value.strip():
        try:
            number = json.loads(value, parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            pass
    if not isinstance(number, bool) and isinstance(number, int | float | Decimal):
        whole = Decimal(number)
        if whole.is_finite() and whole == whole.to_integral_value() and 0 <= whole <= UINT32_MAX:
            return int(whole)
    raise PydanticCustomError(
        "uint32",
        "expected a whole number from 0 to 4294967295, got {got}",
        {"got": _show(value)},
    )


def check_float64_numbers(value: JSON) -> JSON:
    """`value` unchanged when every number in it fits a float64, as daprd requires of
    `data` (`google.protobuf.Value` numbers are doubles); else a `PydanticCustomError`.
    Integers inside the range are kept exact, unlike daprd."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise PydanticCustomError(
                "float64", "a number is out of the range of a float64 (about ±1.8e308)"
            )
        elif isinstance(item, int) and not isinstance(item, bool):
            try:
                float(item)
            except OverflowError:
                raise PydanticCustomError(
                    "float64",
                    "the number {got} is out of the range of a float64 (about ±1.8e308)",
                    {"got": f"{str(item)[:20]}…"},
                ) from None
    return value


def shown_data(data: JSON) -> JSON:
    """`data` as daprd's GET shows it: keys sorted, whole floats as integers (`2.0` is
    `2`), integers exact."""
    return json.loads(encode_data(data))


def parse_proto_duration(value: object) -> timedelta:
    """protojson's Duration: decimal seconds with an `s` suffix, as `"5s"`, `"1.5s"`, `"-2s"`
    or `".5s"`, at most 9 fractional digits (finer than a microsecond is truncated)."""
    match = _PROTO_DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PydanticCustomError(
            "duration",
            'expected seconds with an "s" suffix such as "5s" or "0.5s", got {got}',
            {"got": _show(value)},
        )
    sign, whole, fraction = match.groups()
    seconds = int(whole or 0)
    if seconds > _MAX_DURATION_SECONDS:
        raise PydanticCustomError(
            "duration", "{got} is out of range (at most 315576000000s)", {"got": _show(value)}
        )
    micros = int((fraction or "").ljust(6, "0")[:6])
    delta = timedelta(seconds=seconds, microseconds=micros)
    return -delta if sign == "-" else delta


def format_proto_duration(delta: timedelta) -> str:
    """protojson's Duration output: `"1s"`, `"1.500s"`, `"0.000001s"` (0, 3, 6 or 9 digits)."""
    micros = delta // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, rest = divmod(abs(micros), 1_000_000)
    text = f"{seconds}.{rest * 1000:09d}"
    for suffix in ("000", "000", ".000"):
        text = text.removesuffix(suffix)
    return f"{sign}{text}s"


Uint32 = Annotated[
    int,
    BeforeValidator(_uint32),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": UINT32_MAX}),
]
ProtoDuration = Annotated[
    timedelta,
    BeforeValidator(parse_proto_duration),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[+-]?[0-9]*(\.[0-9]{0,9})?s$", "examples": ["5s"]}
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    same_field: ClassVar[tuple[tuple[str, str], ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for camel, snake in cls.same_field:
                if camel in data and snake in data:
                    raise PydanticCustomError(
                        "duplicate_field",
                        "{camel} and {snake} are the same field; send one",
                        {"camel": camel, "snake": snake},
                    )
        return data


class DropPolicyBody(_Body):
    """`{}`: a failed trigger is not retried."""


class ConstantPolicyBody(_Body):
    """Retry every `interval`; `maxRetries` (or `max_retries`) times, or forever without it."""

    same_field: ClassVar[tuple[tuple[str, str], ...]] = (("maxRetries", "max_retries"),)

    interval: ProtoDuration | None = None
    maxRetries: Uint32 | None = Field(
        None, validation_alias=AliasChoices("maxRetries", "max_retries")
    )


class FailurePolicyBody(_Body):
    """One of `drop` and `constant`; neither means the default (constant, 1s, 3 retries)."""

    drop: DropPolicyBody | None = None
    constant: ConstantPolicyBody | None = None

    @model_validator(mode="after")
    def _one_policy(self) -> FailurePolicyBody:
        if self.drop is not None and self.constant is not None:
            raise PydanticCustomError("oneof", "set only one of drop and constant")
        return self

    def domain(self) -> FailurePolicy | None:
        if self.drop is not None:
            return FailurePolicy.drop()
        if self.constant is not None:
            interval = self.constant.interval or timedelta(0)
            return FailurePolicy("constant", interval, self.constant.maxRetries)
        return None


class ScheduleJobBody(_Body):
    """Dapr's job request. Keys in camelCase or snake_case (`due_time`, `failure_policy`,
    `max_retries`); unknown keys ignored; `null` is the same as leaving a key out."""

    same_field: ClassVar[tuple[tuple[str, str], ...]] = (
        ("dueTime", "due_time"),
        ("failurePolicy", "failure_policy"),
    )

    name: StrictStr | None = Field(None, description="Not allowed: the name goes in the URL.")
    schedule: StrictStr | None = Field(
        None, examples=["@every 10s", "0 30 9 * * MON-FRI", "CRON_TZ=Europe/Paris 0 0 9 * * *"]
    )
    dueTime: StrictStr | None = Field(
        None,
        validation_alias=AliasChoices("dueTime", "due_time"),
        examples=["2026-01-01T09:00:00Z", "10s", "PT10S"],
    )
    repeats: Uint32 | None = None
    ttl: StrictStr | None = Field(None, examples=["1h", "2026-01-02T00:00:00Z"])
    data: Any = Field(
        None,
        description="Any JSON value; delivered as the trigger's body (`null` when left out)."
        " Numbers must fit a float64; integers are kept exact.",
    )
    overwrite: StrictBool | None = None
    failurePolicy: FailurePolicyBody | None = Field(
        None, validation_alias=AliasChoices("failurePolicy", "failure_policy")
    )

    @field_validator("data")
    @classmethod
    def _float64(cls, value: Any) -> Any:
        return check_float64_numbers(value)


def _inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(item, defs) for item in schema]
    return schema


def _request_schema() -> dict[str, Any]:
    schema = ScheduleJobBody.model_json_schema()
    inlined: dict[str, Any] = _inline_refs(schema, schema.get("$defs", {}))
    return inlined


SCHEDULE_JOB_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": _request_schema(),
                "examples": {
                    "once": {
                        "summary": "once, in 10 seconds",
                        "value": {"dueTime": "10s", "data": {"message": "hello, world"}},
                    },
                    "weekdays": {
                        "summary": "every weekday at 09:30 in Paris, retried every 5 s",
                        "value": {
                            "schedule": "CRON_TZ=Europe/Paris 0 30 9 * * MON-FRI",
                            "data": "stand-up",
                            "failurePolicy": {"constant": {"interval": "5s", "maxRetries": 3}},
                            "overwrite": True,
                        },
                    },
                    "ten-times": {
                        "summary": "every 10 s, 10 times, not retried",
                        "value": {
                            "schedule": "@every 10s",
                            "repeats": 10,
                            "failurePolicy": {"drop": {}},
                        },
                    },
                },
            }
        },
    }
}
"""The body is read and decoded by hand (size limit, protojson rules), so it is declared
to OpenAPI here."""


class DataValue(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type_: str = Field(VALUE_TYPE, alias="@type")
    value: Any


class ConstantPolicyOut(BaseModel):
    interval: str
    maxRetries: int | None = None


class FailurePolicyOut(BaseModel):
    drop: dict[str, Any] | None = None
    constant: ConstantPolicyOut | None = None

    @classmethod
    def of(cls, policy: FailurePolicy) -> FailurePolicyOut:
        if policy.kind == "drop":
            return cls(drop={})
        interval = format_proto_duration(policy.interval)
        if policy.max_retries is None:
            return cls(constant=ConstantPolicyOut(interval=interval))
        return cls(constant=ConstantPolicyOut(interval=interval, maxRetries=policy.max_retries))


class JobOut(BaseModel):
    """A job as daprd's GET shows it; fields that were not set are left out, but `data`,
    which is `"value": null` for a job without data (as daprd shows `data: null`)."""

    name: str
    schedule: str | None = None
    repeats: int | None = None
    dueTime: str | None = None
    ttl: str | None = None
    data: DataValue
    failurePolicy: FailurePolicyOut

    @classmethod
    def _fields(cls, job: Job) -> dict[str, Any]:
        fields: dict[str, Any] = {"name": job.name}
        optional = {
            "schedule": job.schedule,
            "repeats": job.repeats,
            "dueTime": job.due_time,
            "ttl": job.ttl,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        fields["data"] = DataValue(type_=VALUE_TYPE, value=shown_data(job.data))
        fields["failurePolicy"] = FailurePolicyOut.of(job.failure_policy or FailurePolicy.default())
        return fields

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(**cls._fields(job))


class AppNotFoundOut(BaseModel):
    count: int = Field(description="Triggers the app answered 404 (gRPC NOT_FOUND).")
    last: str = Field(description="When it last did, RFC3339 UTC.")


class ListedJob(JobOut):
    nextFireTime: str
    attempt: int
    fired: int
    appNotFound: AppNotFoundOut | None = Field(
        None, description="Present once the app has answered one of its triggers 404."
    )

    @classmethod
    def of_state(cls, state: JobState) -> ListedJob:
        fields = cls._fields(state.job)
        if state.app_not_found and state.app_not_found_at is not None:
            fields["appNotFound"] = AppNotFoundOut(
                count=state.app_not_found, last=format_rfc3339(state.app_not_found_at)
            )
        return cls(
            **fields,
            nextFireTime=format_rfc3339(state.next_fire_at),
            attempt=state.attempt,
            fired=state.fired,
        )


class JobPage(BaseModel):
    jobs: list[ListedJob]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class DeadLetterOut(BaseModel):
    id: str
    name: str
    data: Any
    scheduledTime: str
    failedTime: str
    attempts: int
    error: str

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        return cls(
            id=letter.id,
            name=letter.name,
            data=letter.data,
            scheduledTime=format_rfc3339(letter.scheduled_at),
            failedTime=format_rfc3339(letter.failed_at),
            attempts=letter.attempts,
            error=letter.error,
        )


class DeadLetterPage(BaseModel):
    deadLetters: list[DeadLetterOut]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class ReplayResult(BaseModel):
    delivered: bool
