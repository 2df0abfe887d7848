"""The official Dapr Python SDK (`dapr` 1.19), unchanged, against a real `duetime serve` over
gRPC, with no Dapr installed: `DaprClient` (sync and `dapr.aio`) schedules, gets, lists and
deletes jobs; bad input gets daprd's status codes and stores nothing; a `dapr.ext.grpc` app
in its own process receives job events, retried per the job's failure policy.

Every SDK call runs in a child process pointed at duetime the SDK's way (`DAPR_GRPC_ENDPOINT`,
`DAPR_HTTP_ENDPOINT`, `DAPR_API_TOKEN`), as an app would be."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2, appcallback_pb2_grpc
from google.protobuf import struct_pb2

from tests.conftest import free_port
from tests.e2e.conftest import Receiver, Server

TOKEN = "sdk-token-0123456789"

_PRELUDE = """
import asyncio, json, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # the *_alpha1 aliases warn
import grpc
from google.protobuf import any_pb2, struct_pb2
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._jobs import ConstantFailurePolicy, DropFailurePolicy, Job
import dapr.proto.runtime.v1 as api
from dapr.proto.runtime.v1 import dapr_pb2_grpc

def value(v):
    packed = any_pb2.Any()
    packed.Pack(json_value(v))
    return packed

def json_value(v):
    out = struct_pb2.Value()
    from google.protobuf import json_format
    json_format.ParseDict(v, out)
    return out

def unpack(job):
    if job.data is None:
        return None
    out = struct_pb2.Value()
    job.data.Unpack(out)
    from google.protobuf import json_format
    return json_format.MessageToDict(out)

def error(exc):
    info = exc.status_details().error_info or {}
    return {"code": exc.code().name, "message": exc.details(), "reason": info.get("reason")}

def out(value):
    print(json.dumps(value), flush=True)
"""


def run_sdk(server: Server, body: str, token: str | None = None, timeout: float = 60) -> Any:
    """Run `body` (after the prelude) in a child Python with the SDK pointed at `server`;
    returns what it printed last with `out(...)`."""
    env = {
        **os.environ,
        "DAPR_GRPC_ENDPOINT": f"127.0.0.1:{server.grpc_port}",
        "DAPR_HTTP_ENDPOINT": server.url,
        "DAPR_HEALTH_TIMEOUT": "10",
    }
    env.pop("DAPR_API_TOKEN", None)
    if token is not None:
        env["DAPR_API_TOKEN"] = token
    script = _PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"SDK script failed:\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith(("{", "[", '"'))]
    assert lines, f"SDK script printed nothing:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


@pytest.fixture
def server(make_server: Callable[..., Server], receiver: Receiver) -> Server:
    return make_server(DUETIME_API_TOKEN=TOKEN, DUETIME_APP_URL=receiver.url).start()


def _http_get(server: Server, name: str) -> tuple[int, Any]:
    with server.client(TOKEN) as http:
        r = http.get(f"/v1.0/jobs/{name}")
        return r.status_code, r.json()


def test_sync_client_schedules_gets_lists_and_deletes(server: Server) -> None:
    result = run_sdk(
        server,
        """
        with DaprClient() as client:
            client.schedule_job(Job(name="nightly", schedule="0 0 3 * * *",
                data=value({"report": "daily", "n": 3}),
                failure_policy=ConstantFailurePolicy(max_retries=2, interval_seconds=5)))
            client.schedule_job_alpha1(Job(name="once", due_time="1h", data=value("hi")),
                overwrite=False)
            client.schedule_job(Job(name="plain", schedule="@every 1h", repeats=4, ttl="10h",
                failure_policy=DropFailurePolicy()))
            got = client.get_job("nightly")
            alpha = client.get_job_alpha1("once")
            plain = client.get_job("plain")
            # the SDK has no list call: its generated stub, on its channel (token included)
            listed = client._stub.ListJobsAlpha1(api.ListJobsRequestAlpha1())
            try:
                client.schedule_job(Job(name="nightly", schedule="@every 1s"))
                dup = None
            except DaprGrpcError as exc:
                dup = error(exc)
            client.schedule_job(Job(name="nightly", schedule="@every 2h"), overwrite=True)
            after = client.get_job("nightly")
            client.delete_job("once")
            client.delete_job_alpha1("never-existed")
            try:
                client.get_job("once")
                gone = None
            except DaprGrpcError as exc:
                gone = error(exc)
            out({
                "got": [got.name, got.schedule, unpack(got),
                        got.failure_policy.max_retries, got.failure_policy.interval_seconds],
                "alpha": [alpha.name, alpha.due_time, unpack(alpha)],
                "plain": [plain.repeats, plain.ttl, plain.data,
                          type(plain.failure_policy).__name__],
                "listed": sorted(j.name for j in listed.jobs),
                "dup": dup, "after": after.schedule, "gone": gone,
            })
        """,
        token=TOKEN,
    )
    assert result["got"] == ["nightly", "0 0 3 * * *", {"report": "daily", "n": 3}, 2, 5]
    assert result["alpha"] == ["once", "1h", "hi"]
    assert result["plain"] == [4, "10h", None, "DropFailurePolicy"]
    assert result["listed"] == ["nightly", "once", "plain"]
    assert result["dup"]["code"] == "ALREADY_EXISTS"
    assert result["dup"]["reason"] == "DAPR_SCHEDULER_SCHEDULE_JOB"
    assert "already exists" in result["dup"]["message"]
    assert result["after"] == "@every 2h"
    assert result["gone"]["code"] == "NOT_FOUND"
    assert result["gone"]["reason"] == "DAPR_SCHEDULER_GET_JOB"
    # the HTTP API sees what the SDK stored, data as daprd shows it
    status, body = _http_get(server, "nightly")
    assert status == 200
    assert body["schedule"] == "@every 2h"
    status, body = _http_get(server, "plain")
    assert (status, body["failurePolicy"]) == (200, {"drop": {}})
    assert _http_get(server, "once")[0] == 404


def test_async_client_and_a_job_that_fires_to_the_http_app(
    server: Server, receiver: Receiver
) -> None:
    result = run_sdk(
        server,
        """
        from dapr.aio.clients import DaprClient as AsyncDaprClient

        async def main():
            async with AsyncDaprClient() as client:
                await client.schedule_job(Job(name="soon", due_time="1s",
                    data=value({"msg": "ünïcode", "list": [1, 2.5, True, None]})))
                await client.schedule_job(Job(name="later", due_time="1h"))
                got = await client.get_job("later")
                await client.delete_job("later")
                try:
                    await client.get_job("later")
                    gone = None
                except DaprGrpcError as exc:
                    gone = error(exc)
                return {"later": [got.name, got.due_time, got.data], "gone": gone}

        out(asyncio.run(main()))
        """,
        token=TOKEN,
    )
    assert result["later"] == ["later", "1h", None]
    assert result["gone"]["code"] == "NOT_FOUND"
    receiver.wait_for(lambda: len(receiver.of("soon")) == 1, timeout=15)
    fired = receiver.of("soon")[0]
    assert fired.data == {"msg": "ünïcode", "list": [1, 2.5, True, None]}
    assert fired.headers["content-type"] == "application/json"
    assert fired.headers["duetime-attempt"] == "1"
    # a one-shot job is gone once delivered
    deadline = time.monotonic() + 5
    while _http_get(server, "soon")[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _http_get(server, "soon")[0] == 404


def test_bad_input_gets_daprs_status_codes_and_stores_nothing(server: Server) -> None:
    result = run_sdk(
        server,
        """
        import os
        channel = grpc.insecure_channel(os.environ["DAPR_GRPC_ENDPOINT"])
        stub = dapr_pb2_grpc.DaprStub(channel)
        md = (("dapr-api-token", os.environ["DAPR_API_TOKEN"]),)

        def call(request, method="ScheduleJobAlpha1", metadata=md):
            try:
                getattr(stub, method)(request, metadata=metadata, timeout=10)
                return {"code": "OK"}
            except grpc.RpcError as exc:
                return {"code": exc.code().name, "message": exc.details()}

        big = api.Job(name="big", due_time="1h", data=value("x" * (5 * 1024 * 1024)))
        results = {
            "no_job": call(api.ScheduleJobRequest()),
            "no_name": call(api.ScheduleJobRequest(job=api.Job(schedule="@every 1s"))),
            "pipe": call(api.ScheduleJobRequest(job=api.Job(name="a|b", schedule="@every 1s"))),
            "no_schedule": call(api.ScheduleJobRequest(job=api.Job(name="nosched"))),
            "bad_cron": call(api.ScheduleJobRequest(job=api.Job(name="badcron",
                schedule="* * * * *"))),
            "bad_due": call(api.ScheduleJobRequest(job=api.Job(name="baddue",
                due_time="tomorrow"))),
            "bad_name": call(api.ScheduleJobRequest(job=api.Job(name="a@b",
                schedule="@every 1s"))),
            "bad_data": call(api.ScheduleJobRequest(job=api.Job(name="baddata",
                due_time="1h", data=any_pb2.Any(type_url="type.googleapis.com/x.Y",
                value=b"\\x01")))),
            "big": call(api.ScheduleJobRequest(job=big)),
            "wrong_token": call(api.ScheduleJobRequest(job=api.Job(name="tok",
                due_time="1h")), metadata=(("dapr-api-token", "wrong"),)),
            "no_token": call(api.ScheduleJobRequest(job=api.Job(name="tok",
                due_time="1h")), metadata=()),
            "get_empty": call(api.GetJobRequest(name=""), "GetJobAlpha1"),
            "delete_empty": call(api.DeleteJobRequest(name=""), "DeleteJob"),
            "state": call(api.GetStateRequest(store_name="s", key="k"), "GetState"),
        }
        # the SDK refuses some of these itself, before any call
        with DaprClient() as client:
            try:
                client.schedule_job(Job(name="", schedule="@every 1s"))
            except ValueError as exc:
                results["sdk_no_name"] = str(exc)
            try:
                client.schedule_job(Job(name="badcron", schedule="bad"))
            except DaprGrpcError as exc:
                results["sdk_bad_cron"] = error(exc)
        out(results)
        """,
        token=TOKEN,
    )
    expected = {
        "no_job": ("INVALID_ARGUMENT", "Job is empty"),
        "no_name": ("INVALID_ARGUMENT", "Name is empty"),
        "pipe": ("INVALID_ARGUMENT", "Name is empty"),
        "no_schedule": ("INVALID_ARGUMENT", "Schedule is empty"),
        "bad_cron": ("INVALID_ARGUMENT", "failed to schedule job due to: "),
        "bad_due": ("INVALID_ARGUMENT", "failed to schedule job due to: "),
        "bad_name": ("INVALID_ARGUMENT", "failed to schedule job due to: "),
        "bad_data": ("INVALID_ARGUMENT", "failed to schedule job due to: "),
        "big": ("RESOURCE_EXHAUSTED", ""),
        "wrong_token": ("UNAUTHENTICATED", "Unauthorized"),
        "no_token": ("UNAUTHENTICATED", "Unauthorized"),
        "get_empty": ("INVALID_ARGUMENT", "Name is empty"),
        "delete_empty": ("INVALID_ARGUMENT", "Name is empty"),
        "state": ("UNIMPLEMENTED", "dapr.proto.runtime.v1.Dapr/GetState is not implemented"),
    }
    for case, (code, message) in expected.items():
        got = result[case]
        assert got["code"] == code, (case, got)
        assert got["message"].startswith(message), (case, got)
        assert got["message"], (case, got)
    assert "cron" in result["bad_cron"]["message"]
    assert "x.Y" in result["bad_data"]["message"]
    assert "4194304" in result["big"]["message"]
    assert "Jobs and pub/sub" in result["state"]["message"]
    assert result["sdk_bad_cron"]["code"] == "INVALID_ARGUMENT"
    assert result["sdk_bad_cron"]["reason"] == "DAPR_SCHEDULER_SCHEDULE_JOB"
    assert "sdk_no_name" in result
    for name in ("nosched", "badcron", "baddue", "baddata", "big", "tok", "a@b"):
        assert _http_get(server, name)[0] == 404, name
    with server.client(TOKEN) as http:
        assert http.get("/v1.0/jobs").json()["jobs"] == []


def test_wrong_token_is_the_sdks_unauthenticated_error(server: Server) -> None:
    result = run_sdk(
        server,
        """
        with DaprClient() as client:
            try:
                client.schedule_job(Job(name="x", due_time="1h"))
                out({"code": "OK"})
            except DaprGrpcError as exc:
                out(error(exc))
        """,
        token="not-the-token",
    )
    assert result["code"] == "UNAUTHENTICATED"
    assert result["message"] == "Unauthorized"
    assert _http_get(server, "x")[0] == 404


# -- a dapr.ext.grpc app receives job events ------------------------------------------------

_GRPC_APP = """
import json, sys
from dapr.ext.grpc import App

app = App()
log = open(sys.argv[2], "a", buffering=1)

@app.job_event("tick")
def tick(event):
    log.write(json.dumps({"name": event.name, "data": event.data.hex()}) + "\\n")

@app.job_event("flaky")
def flaky(event):
    log.write(json.dumps({"name": event.name, "data": event.data.hex()}) + "\\n")
    raise RuntimeError("flaky fails")

app.run(int(sys.argv[1]))
"""


@pytest.fixture
def grpc_app(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    events = tmp_path / "events.jsonl"
    events.touch()
    script = tmp_path / "grpc_app.py"
    script.write_text(_GRPC_APP)
    with (tmp_path / "grpc_app.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(port), str(events)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        _wait(lambda: _accepts(port) or proc.poll() is not None, 20)
        assert proc.poll() is None, (tmp_path / "grpc_app.log").read_text()
        yield port, events
    finally:
        proc.terminate()
        proc.wait(10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _events(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s")
        time.sleep(0.05)


def test_a_dapr_ext_grpc_app_receives_job_events_and_failures_are_retried(
    make_server: Callable[..., Server], grpc_app: tuple[int, Path]
) -> None:
    port, events = grpc_app
    server = make_server(
        DUETIME_API_TOKEN=TOKEN,
        DUETIME_APP_PROTOCOL="grpc",
        DUETIME_APP_URL=f"127.0.0.1:{port}",
    ).start()
    run_sdk(
        server,
        """
        with DaprClient() as client:
            client.schedule_job(Job(name="tick", due_time="1s", data=value({"n": 1})))
            client.schedule_job(Job(name="flaky", due_time="1s", data=value("f"),
                failure_policy=ConstantFailurePolicy(max_retries=2, interval_seconds=1)))
            out("ok")
        """,
        token=TOKEN,
    )
    _wait(lambda: any(e["name"] == "tick" for e in _events(events)), 20)
    tick = [e for e in _events(events) if e["name"] == "tick"]
    # the app gets the Any's bytes, as from daprd: a google.protobuf.Value {"n": 1}
    value = struct_pb2.Value.FromString(bytes.fromhex(tick[0]["data"]))
    assert value.struct_value.fields["n"].number_value == 1
    # flaky: 1 attempt + 2 retries, 1 s apart, then a dead letter
    _wait(lambda: len([e for e in _events(events) if e["name"] == "flaky"]) >= 3, 20)
    with server.client(TOKEN) as http:
        _wait(lambda: len(http.get("/v1.0/deadletters").json()["deadLetters"]) == 1, 10)
        dead = http.get("/v1.0/deadletters").json()["deadLetters"][0]
    assert dead["name"] == "flaky"
    assert dead["attempts"] == 3
    assert "UNKNOWN" in dead["error"]
    time.sleep(1.5)  # no fourth attempt
    assert len([e for e in _events(events) if e["name"] == "flaky"]) == 3
    assert len(tick) == 1


# -- publish_event over gRPC reaches a subscriber ------------------------------------------


class _Subscriber:
    """A plain HTTP app: `GET /dapr/subscribe` lists topic `orders` of `pubsub` (route
    `/orders`), and every POST is recorded."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"[]"
                if self.path == "/dapr/subscribe":
                    body = json.dumps(
                        [{"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}]
                    ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with subscriber._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    subscriber.events.append((self.path, headers, body))
                answer = b'{"status": "SUCCESS"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def snapshot(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self._lock:
            return list(self.events)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_publish_event_over_grpc_reaches_a_subscriber(
    make_server: Callable[..., Server],
) -> None:
    subscriber = _Subscriber()
    try:
        server = make_server(DUETIME_API_TOKEN=TOKEN, DUETIME_APP_URL=subscriber.url).start()
        result = run_sdk(
            server,
            """
            with DaprClient() as client:
                client.publish_event("pubsub", "orders", json.dumps({"id": 7}),
                    data_content_type="application/json")
                client.publish_event("pubsub", "orders", "plain text")
                errors = {}
                for label, pubsub, topic in (("unknown", "nope", "orders"),
                                             ("no_topic", "pubsub", "")):
                    try:
                        client.publish_event(pubsub, topic, "x")
                    except DaprGrpcError as exc:
                        errors[label] = error(exc)
                meta = client.get_metadata()
                out({"errors": errors, "id": meta.application_id,
                     "components": [c.name for c in meta.registered_components]})
            """,
            token=TOKEN,
        )
        assert result["errors"]["unknown"]["code"] == "INVALID_ARGUMENT"
        assert result["errors"]["unknown"]["message"] == "pubsub nope is not found"
        assert result["errors"]["no_topic"]["code"] == "INVALID_ARGUMENT"
        assert result["id"] == "app"
        assert "pubsub" in result["components"]
        _wait(lambda: len(subscriber.snapshot()) >= 2, 20)
        time.sleep(0.3)  # nothing more arrives
        events = subscriber.snapshot()
        assert len(events) == 2
        envelopes = sorted((json.loads(body) for _, _, body in events), key=lambda e: e["topic"])
        by_type = {e["datacontenttype"]: e for e in envelopes}
        assert by_type["application/json"]["data"] == {"id": 7}
        assert by_type["text/plain"]["data"] == "plain text"
        for path, _headers, _ in events:
            assert path == "/orders"
        for e in envelopes:
            assert (e["source"], e["pubsubname"], e["topic"]) == ("app", "pubsub", "orders")
    finally:
        subscriber.close()


class _Callback(appcallback_pb2_grpc.AppCallbackAlphaServicer):
    """A gRPC app (the generated servicer, in this process) that records each
    `OnJobEventAlpha1` with its metadata; a job named `gone-…` answers NOT_FOUND."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, str]]] = []
        self._lock = threading.Lock()

    def OnJobEventAlpha1(self, request: Any, context: Any) -> Any:
        with self._lock:
            self.calls.append((request, dict(context.invocation_metadata())))
        if request.name.startswith("gone-"):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such job here")
        return appcallback_pb2.JobEventResponse()

    def of(self, name: str) -> list[tuple[Any, dict[str, str]]]:
        with self._lock:
            return [c for c in self.calls if c[0].name == name]


def test_job_events_carry_daprs_request_and_metadata(
    make_server: Callable[..., Server],
) -> None:
    callback = _Callback()
    app = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    appcallback_pb2_grpc.add_AppCallbackAlphaServicer_to_server(callback, app)
    port = app.add_insecure_port("127.0.0.1:0")
    app.start()
    try:
        server = make_server(
            DUETIME_API_TOKEN=TOKEN,
            DUETIME_APP_PROTOCOL="grpc",
            DUETIME_APP_URL=f"127.0.0.1:{port}",
            DUETIME_APP_API_TOKEN="app-token",
        ).start()
        with server.client(TOKEN) as http:
            for name, body in (
                ("ev", {"dueTime": "1s", "data": {"x": [1]}}),
                ("gone-1", {"dueTime": "1s"}),
            ):
                assert http.post(f"/v1.0/jobs/{name}", json=body).status_code == 204
        _wait(lambda: bool(callback.of("ev")) and bool(callback.of("gone-1")), 20)
        time.sleep(1.5)  # NOT_FOUND is success: no retry
        request, metadata = callback.of("ev")[0]
        assert request.method == "job/ev"
        assert request.content_type == "type.googleapis.com/google.protobuf.Value"
        assert request.http_extension.verb == common_pb2.HTTPExtension.POST
        value = struct_pb2.Value()
        assert request.data.Unpack(value)
        assert value.struct_value.fields["x"].list_value.values[0].number_value == 1
        assert metadata["dapr-api-token"] == "app-token"
        assert metadata["duetime-attempt"] == "1"
        assert metadata["duetime-late"] == "false"
        assert metadata["duetime-scheduled-time"].endswith("Z")
        assert len(callback.of("ev")) == 1
        assert len(callback.of("gone-1")) == 1
        with server.client(TOKEN) as http:
            assert http.get("/v1.0/deadletters").json()["deadLetters"] == []
    finally:
        app.stop(None)


def test_a_taken_grpc_port_fails_the_start_with_one_clear_line(
    make_server: Callable[..., Server],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = make_server(DUETIME_GRPC_PORT=str(port))
        with pytest.raises(RuntimeError, match="duetime exited") as caught:
            server.start(timeout=20)
    lines = [line for line in str(caught.value).splitlines() if "DUETIME_GRPC_PORT" in line]
    assert len(lines) == 1, str(caught.value)
    assert f"127.0.0.1:{port}" in lines[0]
    assert "address already in use" in lines[0]
    assert "Traceback" not in str(caught.value)


def test_grpc_port_0_turns_the_grpc_api_off(make_server: Callable[..., Server]) -> None:
    server = make_server(DUETIME_GRPC_PORT="0").start()
    with server.client() as http:
        assert http.get("/v1.0/healthz/outbound").status_code == 204
    assert "Dapr gRPC API on" not in (server._log.read_text())
