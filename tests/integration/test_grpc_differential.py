"""The same Dapr gRPC API calls, made with the official Python SDK (`dapr` 1.19: its
`DaprClient` and, where the SDK has no method, its generated `DaprStub`), sent to a real
daprd 1.16.5 (+ scheduler) and to a real `duetime serve`, and the same jobs fired by both.

For each call the outcome is compared in one line: OK (with the job for a get, its data
decoded), or the status code, the message's class (the text before its first `:`) and the
`ErrorInfo` reason. Then jobs scheduled through the SDK on both sides fire at an HTTP app
(bodies compared byte for byte, whitespace outside strings aside) and at a gRPC app
(`AppCallbackAlpha.OnJobEventAlpha1`: request fields, data, metadata, attempts and their
spacing); and a missing and a wrong API token get the same UNAUTHENTICATED answer.

Every difference is listed in `DIFFERENCES`, `TRIGGER_DIFFERENCES` or
`GRPC_TRIGGER_DIFFERENCES` with its reason; the tests fail on a difference that is not listed
and on a listed one that no longer occurs. The same table is in
docs/reference/dapr-compatibility.md ("gRPC API").
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dapr.proto.runtime.v1 as api
import grpc
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._jobs import ConstantFailurePolicy, DropFailurePolicy, Job
from dapr.conf import settings as dapr_settings
from dapr.proto.runtime.v1 import appcallback_pb2, appcallback_pb2_grpc, dapr_pb2_grpc
from google.protobuf import any_pb2, json_format, struct_pb2, wrappers_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from duetime.jobs.app_channel import AppDeliveryError, NotFoundRule
from duetime.jobs.grpc_app_channel import GrpcAppChannel
from duetime.jobs.model import Answer, Trigger
from duetime.localdapr import Daprd, Scheduler
from tests.e2e.conftest import Server

APP_ID = "differential"


# -- the two sides ----------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    server: _App

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.server.lock:
            self.server.received.append((self.path, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # daprd asks for /dapr/config and /dapr/subscribe
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _App(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.daemon_threads = True
        self.lock = threading.Lock()
        self.received: list[tuple[str, bytes]] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def of(self, name: str) -> list[bytes]:
        with self.lock:
            return [body for path, body in self.received if path == f"/job/{name}"]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@dataclass
class Side:
    name: str
    grpc_address: str
    http_url: str
    app: _App

    def client(self) -> DaprClient:
        """The SDK's client, pointed at this side as `DAPR_HTTP_ENDPOINT` /
        `DAPR_GRPC_ENDPOINT` would point it."""
        dapr_settings.DAPR_HTTP_ENDPOINT = self.http_url
        dapr_settings.DAPR_HEALTH_TIMEOUT = 20
        return DaprClient(address=self.grpc_address)


@pytest.fixture(scope="module")
def daprd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    root = tmp_path_factory.mktemp("dapr")
    app = _App()
    scheduler = Scheduler(root / "scheduler")
    sidecar = Daprd(root / "daprd", app_id=APP_ID, app_port=app.port, scheduler_address=scheduler)
    try:
        scheduler.start()
        sidecar.start(wait_for_app=True)
        yield Side("daprd", f"127.0.0.1:{sidecar.ports.grpc}", sidecar.http_url, app)
    finally:
        sidecar.stop()
        scheduler.stop()
        app.close()


@pytest.fixture(scope="module")
def duetime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    root = tmp_path_factory.mktemp("duetime")
    app = _App()
    env = {
        "DUETIME_DATA_DIR": str(root / "data"),
        "DUETIME_APP_ID": APP_ID,
        "DUETIME_APP_URL": f"http://127.0.0.1:{app.port}",
        "DUETIME_LOG_LEVEL": "warning",
    }
    server = Server(env, Path(root / "server.log"))
    try:
        server.start()
        yield Side("duetime", f"127.0.0.1:{server.grpc_port}", server.url, app)
    finally:
        server.stop()
        app.close()


# -- calls ------------------------------------------------------------------------------------


def _value(v: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    value = struct_pb2.Value()
    json_format.ParseDict(v, value)
    packed.Pack(value)
    return packed


def _raw_json(text: str) -> any_pb2.Any:
    """What the Python SDK's own jobs examples send: JSON bytes, no type URL."""
    return any_pb2.Any(value=text.encode())


def _string_value(text: str) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.StringValue(value=text))
    return packed


def _data(data: any_pb2.Any) -> Any:
    if data.type_url.endswith("google.protobuf.Value"):
        value = struct_pb2.Value()
        data.Unpack(value)
        return {"Value": json_format.MessageToDict(value)}
    return {"type_url": data.type_url, "bytes": data.value.decode("utf-8", "replace")}


def _job(job: api.Job) -> str:
    bare = api.Job()
    bare.CopyFrom(job)
    bare.ClearField("data")
    shown = json_format.MessageToDict(bare, preserving_proto_field_name=True)
    if job.HasField("data"):
        shown["data"] = _data(job.data)
    return json.dumps(shown, sort_keys=True)


def _message_class(message: str) -> str:
    if "larger than max" in message.lower():
        return "larger than max"
    return message.split(":")[0]


def _error(exc: grpc.RpcError) -> str:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    reason = ""
    if status is not None:
        from google.rpc import error_details_pb2

        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    return f"{exc.code().name} {_message_class(exc.details() or '')!r} {reason}".rstrip()


def _sdk_error(exc: DaprGrpcError) -> str:
    info = exc.status_details().error_info or {}
    reason = info.get("reason") or ""
    return f"{exc.code().name} {_message_class(exc.details() or '')!r} {reason}".rstrip()


Call = Callable[[DaprClient, Any], str]


def _stub(method: str, request: Any) -> Call:
    def call(client: DaprClient, stub: Any) -> str:
        response = getattr(stub, method)(request, timeout=30)
        if isinstance(response, api.GetJobResponse):
            return "OK " + _job(response.job)
        if isinstance(response, api.ListJobsResponseAlpha1 | api.ListJobsResponse):
            return "OK " + json.dumps(sorted(j.name for j in response.jobs))
        return "OK"

    return call


def _schedule(job: Job, overwrite: bool = False) -> Call:
    """The SDK's request for `job` (its own `Job` → proto conversion), on the Alpha1 method:
    the SDK's `schedule_job` calls `ScheduleJob` first, which daprd 1.16.5 does not serve
    (see "sdk schedule_job")."""
    return _stub(
        "ScheduleJobAlpha1", api.ScheduleJobRequest(job=job._get_proto(), overwrite=overwrite)
    )


def _get(name: str) -> Call:
    return _stub("GetJobAlpha1", api.GetJobRequest(name=name))


def _sdk_get(name: str) -> Call:
    """GetJobAlpha1, read back through the SDK's own proto → `Job` conversion."""

    def call(client: DaprClient, stub: Any) -> str:
        job = Job._from_proto(stub.GetJobAlpha1(api.GetJobRequest(name=name), timeout=30).job)
        policy = job.failure_policy
        shown = {
            "name": job.name,
            "schedule": job.schedule,
            "due_time": job.due_time,
            "repeats": job.repeats,
            "ttl": job.ttl,
            "data": None if job.data is None else _data(job.data),
            "policy": None if policy is None else type(policy).__name__,
            "retries": getattr(policy, "max_retries", None),
            "interval": getattr(policy, "interval_seconds", None),
        }
        return "OK " + json.dumps(shown, sort_keys=True)

    return call


def _delete(name: str) -> Call:
    return _stub("DeleteJobAlpha1", api.DeleteJobRequest(name=name))


def _sdk(method: str, *args: Any) -> Call:
    """One of the SDK's own methods, as an app calls it."""

    def call(client: DaprClient, stub: Any) -> str:
        result = getattr(client, method)(*args)
        return "OK " + result.name if isinstance(result, Job) else "OK"

    return call


def _publish(pubsub: str, topic: str) -> Call:
    def call(client: DaprClient, stub: Any) -> str:
        client.publish_event(pubsub, topic, "x")
        return "OK"

    return call


def _raw_schedule(job: api.Job | None, method: str = "ScheduleJobAlpha1") -> Call:
    request = api.ScheduleJobRequest() if job is None else api.ScheduleJobRequest(job=job)
    return _stub(method, request)


CALLS: list[tuple[str, Call]] = [
    # -- the SDK's requests (its Job → proto), on the methods daprd 1.16.5 serves --------
    ("value data", _schedule(Job("v", due_time="1h", data=_value({"a": [1, "x", None]})))),
    ("get value data", _get("v")),
    ("sdk get value data", _sdk_get("v")),
    ("no data", _schedule(Job("nodata", schedule="@every 1h"))),
    ("get no data", _get("nodata")),
    ("raw JSON bytes data", _schedule(Job("raw", due_time="1h", data=_raw_json('{"m": 1}')))),
    ("get raw JSON bytes data", _get("raw")),
    ("StringValue data", _schedule(Job("sv", due_time="1h", data=_string_value("hi")))),
    ("get StringValue data", _get("sv")),
    ("drop policy", _schedule(Job("drop", due_time="1h", failure_policy=DropFailurePolicy()))),
    ("get drop policy", _get("drop")),
    (
        "constant policy",
        _schedule(
            Job(
                "const",
                due_time="1h",
                failure_policy=ConstantFailurePolicy(max_retries=2, interval_seconds=5),
            )
        ),
    ),
    ("sdk get constant policy", _sdk_get("const")),
    ("cron 6 fields", _schedule(Job("cron6", schedule="0 30 9 * * MON-FRI", repeats=3))),
    ("get cron 6 fields", _get("cron6")),
    ("cron 5 fields", _schedule(Job("cron5", schedule="30 9 * * MON-FRI"))),
    ("get cron 5 fields", _get("cron5")),
    ("every with ttl", _schedule(Job("ttl", schedule="@every 1h", ttl="3h", due_time="1h"))),
    ("get every with ttl", _get("ttl")),
    ("bad dueTime", _schedule(Job("baddue", due_time="tomorrow"))),
    ("bad ttl", _schedule(Job("badttl", schedule="@every 1h", ttl="forever"))),
    ("bad zone", _schedule(Job("badtz", schedule="CRON_TZ=Mars/Olympus 0 0 9 * * *"))),
    ("again without overwrite", _schedule(Job("v", due_time="2h"))),
    ("overwrite", _schedule(Job("v", due_time="2h", data=_value(2)), overwrite=True)),
    ("get overwritten", _get("v")),
    ("sdk get missing", _sdk_get("missing")),
    ("get missing", _get("missing")),
    ("delete missing", _delete("missing")),
    ("delete existing", _delete("drop")),
    ("get deleted", _get("drop")),
    ("name with @", _schedule(Job("a@b", due_time="1h"))),
    ("name with capitals and _", _schedule(Job("My_Job", due_time="1h"))),
    ("get name with capitals and _", _get("My_Job")),
    # -- the SDK's own methods ---------------------------------------------------------------
    ("sdk schedule_job", _sdk("schedule_job", Job("sdk", due_time="1h", data=_value(1)))),
    ("sdk get_job", _sdk("get_job", "cron6")),
    ("sdk delete_job", _sdk("delete_job", "cron6")),
    ("sdk get_metadata id", lambda client, stub: "OK " + client.get_metadata().application_id),
    # -- through the SDK's generated stub: what its methods refuse or lack -------------------
    ("no job", _raw_schedule(None)),
    ("no name", _raw_schedule(api.Job(schedule="@every 1h"))),
    ("name with |", _raw_schedule(api.Job(name="a|b", schedule="@every 1h"))),
    ("no schedule no dueTime", _raw_schedule(api.Job(name="nosched"))),
    ("empty schedule string", _raw_schedule(api.Job(name="emptys", schedule=""))),
    (
        "data over 4 MiB",
        _raw_schedule(api.Job(name="big", due_time="1h", data=_value("x" * (5 << 20)))),
    ),
    ("get big", _get("big")),
    ("get empty name", _get("")),
    ("delete empty name", _stub("DeleteJobAlpha1", api.DeleteJobRequest(name=""))),
    (
        "ScheduleJob (1.18 name)",
        _raw_schedule(api.Job(name="stable", due_time="1h"), "ScheduleJob"),
    ),
    ("GetJob (1.18 name)", _stub("GetJob", api.GetJobRequest(name="v"))),
    ("ListJobsAlpha1", _stub("ListJobsAlpha1", api.ListJobsRequestAlpha1())),
    (
        "DeleteJobsByPrefixAlpha1",
        _stub("DeleteJobsByPrefixAlpha1", api.DeleteJobsByPrefixRequestAlpha1(name_prefix="c")),
    ),
    ("GetState", _stub("GetState", api.GetStateRequest(store_name="s", key="k"))),
    # -- pub/sub -------------------------------------------------------------------------
    ("publish to an unknown pubsub", _publish("nope", "orders")),
    ("publish with no pubsub name", _stub("PublishEvent", api.PublishEventRequest(topic="t"))),
]

_SDK_STABLE = (
    "the SDK 1.19 calls the stable name (ScheduleJob, GetJob, DeleteJob) first and falls "
    "back to Alpha1 only on UNIMPLEMENTED; daprd 1.16.5 does not serve the stable names and "
    "hands unknown methods to its service-invocation proxy, which answers UNKNOWN 'failed "
    "to proxy request' (so the SDK's job methods fail on daprd 1.16.5); duetime serves them"
)

DIFFERENCES: dict[str, str] = {
    "sdk schedule_job": _SDK_STABLE,
    "sdk get_job": _SDK_STABLE,
    "sdk delete_job": _SDK_STABLE,
    "get raw JSON bytes data": (
        "duetime stores job data as JSON: JSON bytes in an Any without a type URL come back "
        "packed as google.protobuf.Value (daprd returns the Any as sent)"
    ),
    "StringValue data": (
        "duetime stores job data as JSON and refuses other Any types with INVALID_ARGUMENT; "
        "daprd stores any Any (and sends its protobuf bytes to an HTTP app)"
    ),
    "get StringValue data": "follows from the row above: duetime stored nothing",
    "cron 5 fields": "an invalid job is the caller's mistake: INVALID_ARGUMENT, not INTERNAL",
    "bad dueTime": "an invalid job is the caller's mistake: INVALID_ARGUMENT, not INTERNAL",
    "bad ttl": "an invalid job is the caller's mistake: INVALID_ARGUMENT, not INTERNAL",
    "bad zone": "an invalid job is the caller's mistake: INVALID_ARGUMENT, not INTERNAL",
    "name with @": "an invalid name is the caller's mistake: INVALID_ARGUMENT, not INTERNAL",
    "empty schedule string": (
        "an invalid job is the caller's mistake: INVALID_ARGUMENT, not INTERNAL"
    ),
    "sdk get missing": "a missing job is NOT_FOUND, not INTERNAL (the HTTP API's 404)",
    "get missing": "a missing job is NOT_FOUND, not INTERNAL (the HTTP API's 404)",
    "get deleted": "a missing job is NOT_FOUND, not INTERNAL (the HTTP API's 404)",
    "get big": "a missing job is NOT_FOUND, not INTERNAL (the HTTP API's 404)",
    "get cron 5 fields": "a missing job is NOT_FOUND, not INTERNAL (the HTTP API's 404)",
    "ScheduleJob (1.18 name)": _SDK_STABLE,
    "GetJob (1.18 name)": _SDK_STABLE,
    "ListJobsAlpha1": (
        "duetime serves it (proto 1.17+); daprd 1.16.5 has no such method (its proxy answers)"
    ),
    "DeleteJobsByPrefixAlpha1": (
        "duetime serves it (proto 1.17+); daprd 1.16.5 has no such method (its proxy answers)"
    ),
    "GetState": (
        "duetime serves no state store: UNIMPLEMENTED naming the method; daprd answers "
        "that no state store is configured"
    ),
}


def _run(side: Side, call: Call) -> str:
    with side.client() as client:
        try:
            return call(client, client._stub)
        except DaprGrpcError as exc:
            return _sdk_error(exc)
        except grpc.RpcError as exc:
            return _error(exc)


def test_same_sdk_calls_same_answers(daprd: Side, duetime: Side) -> None:
    problems = []
    seen = set()
    report = []
    for label, call in CALLS:
        assert label not in seen, label
        seen.add(label)
        theirs = _run(daprd, call)
        ours = _run(duetime, call)
        report.append(f"{label}\n  daprd:   {theirs}\n  duetime: {ours}")
        listed = label in DIFFERENCES
        if theirs != ours and not listed:
            problems.append(f"unlisted difference: {label}\n  daprd:   {theirs}\n  duetime: {ours}")
        if theirs == ours and listed:
            problems.append(f"listed difference no longer occurs: {label}: {ours}")
    assert set(DIFFERENCES) <= seen, set(DIFFERENCES) - seen
    if os.environ.get("DUETIME_DIFF_REPORT"):
        Path(os.environ["DUETIME_DIFF_REPORT"]).write_text("\n".join(report) + "\n")
    assert not problems, "\n".join(problems)


# -- triggers ---------------------------------------------------------------------------------

TRIGGERS: list[tuple[str, Job]] = [
    ("fire-value", Job("fire-value", due_time="1s", data=_value({"b": [1, 2.5, "ü"], "a": None}))),
    ("fire-string", Job("fire-string", due_time="1s", data=_value("text"))),
    ("fire-raw", Job("fire-raw", due_time="1s", data=_raw_json('{"message": "hi"}'))),
    ("fire-nodata", Job("fire-nodata", due_time="1s")),
]

TRIGGER_DIFFERENCES: dict[str, str] = {
    "fire-nodata": (
        "duetime keeps 'no data' and 'null' as one value and delivers it as `null` (as daprd "
        "delivers an HTTP job's `data: null`); daprd sends the SDK's empty Any as an empty body"
    ),
}
"""Bodies are compared without the whitespace outside strings: daprd's protojson puts a
space after some `,` and `:`, and sends JSON bytes of an Any without a type URL as they
came (spaces included), where duetime writes compact JSON."""


def _without_whitespace(body: bytes) -> bytes:
    out = bytearray()
    in_string = escaped = False
    for byte in body:
        if in_string:
            out.append(byte)
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
            out.append(byte)
        elif byte not in b" \t\r\n":
            out.append(byte)
    return bytes(out)


def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        time.sleep(0.05)


def test_same_jobs_same_trigger_bodies(daprd: Side, duetime: Side) -> None:
    for side in (daprd, duetime):
        with side.client() as client:
            for _, job in TRIGGERS:
                assert _schedule(job)(client, client._stub) == "OK"
    for side in (daprd, duetime):
        _wait(lambda s=side: all(len(s.app.of(n)) >= 1 for n, _ in TRIGGERS), 20)  # type: ignore[misc]
    time.sleep(1.0)  # no second delivery
    problems = []
    for name, _ in TRIGGERS:
        theirs = [_without_whitespace(b) for b in daprd.app.of(name)]
        ours = [_without_whitespace(b) for b in duetime.app.of(name)]
        listed = name in TRIGGER_DIFFERENCES
        if (theirs != ours) != listed:
            problems.append(f"{name}: daprd {theirs!r} duetime {ours!r} (listed: {listed})")
    assert not problems, "\n".join(problems)


# -- the API token ------------------------------------------------------------------------------

TOKEN = "differential-token"


def test_same_token_errors(tmp_path: Path) -> None:
    """A missing and a wrong `dapr-api-token` on daprd with `DAPR_API_TOKEN` and on duetime
    with `DUETIME_API_TOKEN`: the same UNAUTHENTICATED status, message and ErrorInfo."""
    app = _App()
    scheduler = Scheduler(tmp_path / "scheduler")
    sidecar = Daprd(
        tmp_path / "daprd",
        app_id=APP_ID,
        app_port=app.port,
        scheduler_address=scheduler,
        api_token=TOKEN,
    )
    server = Server(
        {"DUETIME_DATA_DIR": str(tmp_path / "duetime"), "DUETIME_API_TOKEN": TOKEN},
        tmp_path / "server.log",
    )
    try:
        scheduler.start()
        sidecar.start(wait_for_app=True)
        server.start()
        answers = {}
        for side, address in (
            ("daprd", f"127.0.0.1:{sidecar.ports.grpc}"),
            ("duetime", f"127.0.0.1:{server.grpc_port}"),
        ):
            with grpc.insecure_channel(address) as channel:
                stub = dapr_pb2_grpc.DaprStub(channel)
                request = api.ScheduleJobRequest(job=api.Job(name="t", due_time="1h"))
                rows = []
                for metadata in ((), (("dapr-api-token", "wrong"),)):
                    try:
                        stub.ScheduleJobAlpha1(request, metadata=metadata, timeout=30)
                        rows.append("OK")
                    except grpc.RpcError as exc:
                        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
                        info = error_details_pb2.ErrorInfo()
                        assert status is not None and status.details[0].Unpack(info)
                        rows.append(
                            f"{exc.code().name} {exc.details()!r} {info.reason} "
                            # daprd fills the metadata from a Go map: no set order.
                            f"{sorted(info.metadata.items())}"
                        )
                answers[side] = rows
        assert answers["daprd"] == answers["duetime"], answers
        assert answers["duetime"][0].startswith("UNAUTHENTICATED 'Unauthorized'")
    finally:
        server.stop()
        sidecar.stop()
        scheduler.stop()
        app.close()


# -- triggers to a gRPC app ------------------------------------------------------------------


class _GrpcDaprd(Daprd):
    """daprd with `--app-protocol grpc` (the helper starts it for HTTP apps)."""

    def _spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        args = ["--app-protocol=grpc" if a == "--app-protocol=http" else a for a in args]
        super()._spawn(args, env)


class _Callback(appcallback_pb2_grpc.AppCallbackAlphaServicer):
    """A gRPC app recording each `OnJobEventAlpha1` (the request and its metadata); jobs
    named `fail-…` answer UNKNOWN (a handler that raised), `gone-…` NOT_FOUND."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Any, dict[str, str]]] = []
        self._lock = threading.Lock()

    def OnJobEventAlpha1(self, request: Any, context: Any) -> Any:
        with self._lock:
            md = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            self.calls.append((time.monotonic(), request, md))
        if request.name.startswith("fail-"):
            context.abort(grpc.StatusCode.UNKNOWN, "the handler raised")
        if request.name.startswith("gone-"):
            context.abort(grpc.StatusCode.NOT_FOUND, "no handler")
        return appcallback_pb2.JobEventResponse()

    def of(self, name: str) -> list[tuple[float, Any, dict[str, str]]]:
        with self._lock:
            return [c for c in self.calls if c[1].name == name]


@contextmanager
def _grpc_app() -> Iterator[tuple[int, _Callback]]:
    callback = _Callback()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    appcallback_pb2_grpc.add_AppCallbackAlphaServicer_to_server(callback, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, callback
    finally:
        server.stop(None)


GRPC_TRIGGERS: list[Job] = [
    Job("ev-value", due_time="1s", data=_value({"k": [1, "x"]})),
    Job("ev-nodata", due_time="1s"),
    Job("ev-raw", due_time="1s", data=_raw_json('{"m": 1}')),
    Job(
        "fail-ev",
        due_time="1s",
        data=_value("f"),
        failure_policy=ConstantFailurePolicy(max_retries=2, interval_seconds=1),
    ),
    Job("gone-ev", due_time="1s", data=_value("g")),
]

GRPC_TRIGGER_DIFFERENCES: dict[str, str] = {
    "ev-raw": (
        "JSON bytes in an Any without a type URL are stored as JSON and sent packed as "
        "google.protobuf.Value (daprd sends the Any as it came: no type URL, the JSON bytes)"
    ),
}
DUETIME_METADATA = {"duetime-scheduled-time", "duetime-attempt", "duetime-late"}
"""Metadata: daprd sends `dapr-api-token` (its `APP_API_TOKEN`) besides grpc's `user-agent`;
duetime sends the same and adds these three, as the HTTP channel adds them as headers."""


def _event(calls: list[tuple[float, Any, dict[str, str]]]) -> str:
    if not calls:
        return "no call"
    _, request, md = calls[0]
    data = _data(request.data) if request.HasField("data") else None
    spacing = [round(b[0] - a[0]) for a, b in itertools.pairwise(calls)]
    return json.dumps(
        {
            "attempts": len(calls),
            "spacing_s": spacing,
            "name": request.name,
            "method": request.method,
            "content_type": request.content_type,
            "verb": request.http_extension.verb,
            "data": data,
            "token": md.get("dapr-api-token"),
        },
        sort_keys=True,
    )


def test_same_jobs_same_events_at_a_grpc_app(tmp_path: Path) -> None:
    with _grpc_app() as (dapr_port, dapr_app), _grpc_app() as (our_port, our_app):
        scheduler = Scheduler(tmp_path / "scheduler")
        sidecar = _GrpcDaprd(
            tmp_path / "daprd",
            app_id=APP_ID,
            app_port=dapr_port,
            scheduler_address=scheduler,
            app_api_token="app-secret",
        )
        server = Server(
            {
                "DUETIME_DATA_DIR": str(tmp_path / "duetime"),
                "DUETIME_APP_ID": APP_ID,
                "DUETIME_APP_PROTOCOL": "grpc",
                "DUETIME_APP_URL": f"127.0.0.1:{our_port}",
                "DUETIME_APP_API_TOKEN": "app-secret",
            },
            tmp_path / "server.log",
        )
        try:
            scheduler.start()
            sidecar.start(wait_for_app=True)
            server.start()
            for address in (f"127.0.0.1:{sidecar.ports.grpc}", f"127.0.0.1:{server.grpc_port}"):
                with grpc.insecure_channel(address) as channel:
                    stub = dapr_pb2_grpc.DaprStub(channel)
                    for job in GRPC_TRIGGERS:
                        request = api.ScheduleJobRequest(job=job._get_proto())
                        stub.ScheduleJobAlpha1(request, timeout=30)
            for app in (dapr_app, our_app):
                _wait(lambda a=app: len(a.of("fail-ev")) >= 3, 20)  # type: ignore[misc]
                _wait(lambda a=app: all(a.of(j.name) for j in GRPC_TRIGGERS), 10)  # type: ignore[misc]
            time.sleep(1.5)  # no fourth attempt, no second delivery
            problems = []
            for job in GRPC_TRIGGERS:
                theirs, ours = _event(dapr_app.of(job.name)), _event(our_app.of(job.name))
                keys = {k for k in dapr_app.of(job.name)[0][2] if k != "user-agent"}
                our_keys = {k for k in our_app.of(job.name)[0][2] if k != "user-agent"}
                if our_keys - keys != DUETIME_METADATA or keys - our_keys:
                    problems.append(f"{job.name}: metadata daprd {keys} duetime {our_keys}")
                listed = job.name in GRPC_TRIGGER_DIFFERENCES
                if (theirs != ours) != listed:
                    problems.append(
                        f"{job.name} (listed: {listed})\n  daprd:   {theirs}\n  duetime: {ours}"
                    )
            assert not problems, "\n".join(problems)
            _, _, md = our_app.of("ev-value")[0]
            assert md["duetime-attempt"] == "1"
        finally:
            server.stop()
            sidecar.stop()
            scheduler.stop()


@pytest.mark.parametrize("rule", ["success", "failure"])
async def test_grpc_not_found_follows_app_404(
    rule: NotFoundRule, caplog: pytest.LogCaptureFixture
) -> None:
    """NOT_FOUND is the gRPC app's 404: dropped as delivered (daprd's rule) or, with
    DUETIME_APP_404=failure, a failure; logged either way."""
    now = datetime.now(UTC)
    trigger = Trigger("gone-x", "g", scheduled_at=now, fired_at=now)
    with _grpc_app() as (port, callback):
        channel = GrpcAppChannel(f"127.0.0.1:{port}", timeout=10, not_found=rule)
        try:
            if rule == "failure":
                with pytest.raises(AppDeliveryError, match="app answered NOT_FOUND"):
                    await channel(trigger)
            else:
                assert await channel(trigger) is Answer.APP_NOT_FOUND
        finally:
            await channel.aclose()
    assert len(callback.of("gone-x")) == 1
    assert "job 'gone-x' (attempt 1): the app answered NOT_FOUND" in caplog.text
