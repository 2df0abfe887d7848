"""The users' briefs' own Dapr code (`tests/e2e/seeds/brief_NNN.py`, extracted from
`../shared/seeds/*.txt` with only the sidecar's port changed), each brief run as a real
process against a real daprd 1.16.5 (+ Dapr Scheduler + a Redis pub/sub component on a
real Redis) and against a real `duetime serve`, each in front of the same kind of app
(`tests.subscriber.Subscriber`: records job triggers and pub/sub events).

For every call a brief makes, what its code returned, raised or printed and each HTTP
exchange (method, path, status, `errorCode` or body) are recorded on both sides:
- daprd's outcome must be the one in `STEPS`, next to what the brief says happens: where a
  brief is wrong about Dapr (paths, status codes, bodies), this is how daprd really answers;
- duetime's outcome must equal daprd's, or be listed in `DIFFERENCES` with the reason. An
  unlisted difference fails, and so does a listed one that no longer occurs.
Jobs that fire must reach the app on both sides (path, body, content type, how often), and
the events the briefs publish must reach a subscriber on both (CloudEvent fields).

The same table, in prose, is in docs/reference/dapr-compatibility.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from duetime.localdapr import Daprd, Scheduler
from tests.brokers import RedisServer
from tests.e2e.conftest import Server
from tests.e2e.seeds import brief_003
from tests.e2e.seeds._glue import MARKER
from tests.subscriber import Got, Subscriber

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "seeds"
PUBSUB, TOPIC, ROUTE = "kafka-pubsub", "task-reminders", "/task-reminders"
SUBSCRIPTIONS = [{"pubsubname": PUBSUB, "topic": TOPIC, "route": ROUTE}]
ALPHA1 = "/v1.0-alpha1/jobs"  # brief 002 run again with its `/v1.0/jobs` sent here

# -- what each brief says, and what daprd 1.16.5 really does ---------------------------------
# A run is a brief, or "002@alpha1": brief 002 with its `/v1.0/jobs` requests sent to
# `/v1.0-alpha1/jobs` (the only Jobs path of daprd 1.16.5), to show what daprd does with its
# bodies. Each step's outcome is one line (`summary`): its HTTP exchanges (method, path,
# status, `errorCode` or body), then what the brief's code returned (or raised) and printed.


def _x(method: str, path: str, status: int, body: Any = "") -> str:
    return f"{method} {path} -> {status} {json.dumps(body)}"


def _err(code: str) -> dict[str, str]:
    return {"errorCode": code}


def _ret(value: Any) -> str:
    return f"returned {json.dumps(value)}"


def _resp(status: str) -> str:
    """What brief 002's code returns: the response object (here its repr)."""
    return _ret(f"<Response [{status}]>")


_R404, _R500, _R204 = (
    _resp("404 Not Found"),
    _resp("500 Internal Server Error"),
    _resp("204 No Content"),
)
_NOT_INVOKE = _err("ERR_DIRECT_INVOKE")  # daprd 1.16.5 takes /v1.0/jobs for service invocation
_CLEANUP = "daily-todo-cleanup"
_POLICY = {"constant": {"interval": "1s", "maxRetries": 3}}


def _job_cleanup(schedule: str) -> dict[str, Any]:
    return {
        "name": _CLEANUP,
        "schedule": schedule,
        "data": {
            "@type": "type.googleapis.com/google.protobuf.Value",
            "value": {"action": "cleanup-completed-todos", "retention_days": 30},
        },
        "failurePolicy": _POLICY,
    }


_T2 = "task-reminder-123-user-xyz"
_V1, _A1 = "/v1.0/jobs", ALPHA1

# (run, step) -> (what the brief says happens, what daprd 1.16.5 did: measured)
STEPS: dict[tuple[str, str], tuple[str, str]] = {
    ("000", "publish task-reminders"): (
        "publishes the JSON text to kafka-pubsub / task-reminders",
        _ret(None),
    ),
    ("001", "publish task-reminders"): (
        "publishes the JSON text to kafka-pubsub / task-reminders",
        _ret(None),
    ),
    ("000@bare", "publish task-reminders"): (
        "(the brief assumes a pub/sub named kafka-pubsub exists)",
        "raised "
        + json.dumps(
            {"type": "DaprGrpcError", "code": "INVALID_ARGUMENT", "reason": "DAPR_PUBSUB_NOT_FOUND"}
        ),
    ),
    # brief 002 as written: every call under /v1.0/jobs
    ("002", "get before it exists"): (
        "404 Not Found - Job doesn't exist",
        f"{_x('GET', f'{_V1}/{_T2}', 404, _NOT_INVOKE)}; {_R404}",
    ),
    ("002", "delete before it exists"): (
        "404 Not Found - Job doesn't exist",
        f"{_x('DELETE', f'{_V1}/{_T2}', 404, _NOT_INVOKE)}; {_R404}",
    ),
    ("002", "schedule one-time (due 2025-01-15)"): (
        '200 OK {"status": "scheduled", "job_name": ...}; fires at the due date',
        f"{_x('POST', f'{_V1}/{_T2}', 404, _NOT_INVOKE)}; {_R404}",
    ),
    ("002", "get after scheduling"): (
        "200 OK with the job (name, schedule, repeats, dueTime, data, status)",
        f"{_x('GET', f'{_V1}/{_T2}', 404, _NOT_INVOKE)}; {_R404}",
    ),
    ("002", "list"): (
        '200 {"jobs": [...]}',
        f"{_x('GET', _V1, 404, _NOT_INVOKE)}; {_R404}",
    ),
    ("002", "schedule recurring (5-field cron, repeats 0)"): (
        "a 5-field cron; repeats 0 = infinite",
        f"{_x('POST', f'{_V1}/daily-standup', 404, _NOT_INVOKE)}; {_R404}",
    ),
    ("002", "get the recurring job"): (
        "200 OK with the job",
        f"{_x('GET', f'{_V1}/daily-standup', 404, _NOT_INVOKE)}; {_R404}",
    ),
    # brief 002's bodies on the path daprd serves
    ("002@alpha1", "get before it exists"): (
        "404 Not Found - Job doesn't exist",
        f"{_x('GET', f'{_A1}/{_T2}', 500, _err('DAPR_SCHEDULER_GET_JOB'))}; {_R500}",
    ),
    ("002@alpha1", "delete before it exists"): (
        "404 Not Found - Job doesn't exist",
        f"{_x('DELETE', f'{_A1}/{_T2}', 204)}; {_R204}",
    ),
    ("002@alpha1", "schedule one-time (due 2025-01-15)"): (
        '"schedule": "" is a one-time job; 200 OK',
        f"{_x('POST', f'{_A1}/{_T2}', 500, _err('DAPR_SCHEDULER_SCHEDULE_JOB'))}; {_R500}",
    ),
    ("002@alpha1", "get after scheduling"): (
        "200 OK with the job",
        f"{_x('GET', f'{_A1}/{_T2}', 500, _err('DAPR_SCHEDULER_GET_JOB'))}; {_R500}",
    ),
    ("002@alpha1", "list"): (
        '200 {"jobs": [...]}',
        f"{_x('GET', _A1, 404, _NOT_INVOKE)}; {_R404}",
    ),
    ("002@alpha1", "schedule recurring (5-field cron, repeats 0)"): (
        "a 5-field cron; repeats 0 = infinite",
        f"{_x('POST', f'{_A1}/daily-standup', 500, _err('DAPR_SCHEDULER_SCHEDULE_JOB'))}; {_R500}",
    ),
    ("002@alpha1", "get the recurring job"): (
        "200 OK with the job",
        f"{_x('GET', f'{_A1}/daily-standup', 500, _err('DAPR_SCHEDULER_GET_JOB'))}; {_R500}",
    ),
    # brief 003
    ("003", "schedule reminder-task-7"): (
        "returns True: the job is scheduled when the status is 200",
        f"{_x('POST', f'{_A1}/reminder-task-7', 204)}; {_ret(False)}",
    ),
    # brief 004
    ("004", "schedule_cleanup_job (@daily)"): (
        "204; prints that it is scheduled",
        f"{_x('POST', f'{_A1}/{_CLEANUP}', 204)}; {_ret(None)};"
        f" printed {json.dumps([f'Job {_CLEANUP!r} scheduled successfully'])}",
    ),
    ("004", "schedule_reminder (due 2025-01-15)"): (
        "a one-time job at the due time",
        f"{_x('POST', f'{_A1}/quarterly-reminder', 204)}; {_ret(None)}",
    ),
    ("004", "schedule_hourly_sync (@hourly x24)"): (
        "every hour, 24 times",
        f"{_x('POST', f'{_A1}/hourly-sync', 204)}; {_ret(None)}",
    ),
    ("004", "schedule_cleanup_job again, at startup"): (
        '400 when the job exists: prints "Cleanup job already scheduled"',
        f"{_x('POST', f'{_A1}/{_CLEANUP}', 409, _err('DAPR_SCHEDULER_SCHEDULE_JOB'))};"
        f" {_ret(None)}",
    ),
    ("004", "get_job"): (
        "200 with the job's details",
        f"{_x('GET', f'{_A1}/{_CLEANUP}', 200, _job_cleanup('@daily'))};"
        f" {_ret(_job_cleanup('@daily'))}",
    ),
    ("004", "update_job_schedule to @weekly"): (
        "overwrite: True replaces the job: 204",
        f"{_x('POST', f'{_A1}/{_CLEANUP}', 204)}; {_ret(True)}",
    ),
    ("004", "get_job after the update"): (
        "200 with the new schedule",
        f"{_x('GET', f'{_A1}/{_CLEANUP}', 200, _job_cleanup('@weekly'))};"
        f" {_ret(_job_cleanup('@weekly'))}",
    ),
    ("004", "delete_job"): ("204", f"{_x('DELETE', f'{_A1}/{_CLEANUP}', 204)}; {_ret(True)}"),
    ("004", "get_job after delete_job"): (
        "None (not 200)",
        f"{_x('GET', f'{_A1}/{_CLEANUP}', 500, _err('DAPR_SCHEDULER_GET_JOB'))}; {_ret(None)}",
    ),
    ("004", "delete_job hourly-sync"): (
        "204",
        f"{_x('DELETE', f'{_A1}/hourly-sync', 204)}; {_ret(True)}",
    ),
}


@dataclass
class Side:
    """One sidecar under test and the app behind it."""

    name: str
    http_port: int
    grpc_port: int
    app: Subscriber
    http_url: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def wait_for(self, path: str, n: int, timeout: float) -> list[Got]:
        """The app's first `n` requests on `path`, or a failure naming this side."""
        try:
            return self.app.wait_count(path, n, timeout)
        except AssertionError as exc:
            raise AssertionError(
                f"{self.name}: {exc}\n--- {self.name} log\n{self.tail()}"
            ) from None


def _component(redis: RedisServer) -> str:
    return (
        f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {PUBSUB}\n"
        "spec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n"
        f"  - name: redisHost\n    value: {redis.address}\n"
    )


def _subscribed(app: Subscriber, timeout: float = 30) -> None:
    """Until the sidecar asked the app for its subscriptions, and a little longer."""
    app.wait(lambda: app.subscribe_calls >= 1, timeout)
    time.sleep(1.0)  # both subscribe right after they ask


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduler]:
    scheduler = Scheduler(tmp_path_factory.mktemp("seeds-scheduler"))
    try:
        yield scheduler.start()
    finally:
        scheduler.stop()


@contextmanager
def daprd_side(
    root: Path, scheduler: Scheduler, resources: dict[str, str], subscriptions: list[Any]
) -> Iterator[Side]:
    app = Subscriber(subscriptions)
    sidecar = Daprd(
        root / "daprd",
        app_id=APP_ID,
        app_port=app.port,
        scheduler_address=scheduler,
        resources=resources,
    )
    try:
        sidecar.start(wait_for_app=True)
        if resources:  # daprd asks for subscriptions only when it has a pub/sub
            _subscribed(app)
        yield Side(
            "daprd", sidecar.ports.http, sidecar.ports.grpc, app, sidecar.http_url, sidecar.log
        )
    finally:
        sidecar.stop()
        app.close()


@contextmanager
def duetime_side(root: Path, env: dict[str, str], subscriptions: list[Any]) -> Iterator[Side]:
    root.mkdir(parents=True, exist_ok=True)
    app = Subscriber(subscriptions)
    base = {
        "DUETIME_DATA_DIR": str(root / "data"),
        "DUETIME_LOG_LEVEL": "info",
        "DUETIME_APP_ID": APP_ID,
        "DUETIME_APP_URL": app.url,
    }
    server = Server({**base, **env}, root / "server.log")
    try:
        server.start()
        if subscriptions:
            _subscribed(app)
        yield Side("duetime", server.port, server.grpc_port, app, server.url, root / "server.log")
    finally:
        server.stop()
        app.close()


@pytest.fixture(scope="module")
def daprd(
    tmp_path_factory: pytest.TempPathFactory, scheduler: Scheduler, redis_server: RedisServer
) -> Iterator[Side]:
    """daprd with a Redis pub/sub component named as the briefs name theirs."""
    resources = {"pubsub.yaml": _component(redis_server)}
    with daprd_side(
        tmp_path_factory.mktemp("seeds-dapr"), scheduler, resources, SUBSCRIPTIONS
    ) as side:
        yield side


@pytest.fixture(scope="module")
def duetime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    """duetime with an embedded pub/sub of that name."""
    env = {"DUETIME_PUBSUBS": json.dumps([PUBSUB])}
    with duetime_side(tmp_path_factory.mktemp("seeds-duetime"), env, SUBSCRIPTIONS) as side:
        yield side


# -- running a brief --------------------------------------------------------------------------


def run_brief(side: Side, brief: str, *, jobs_path: str | None = None) -> list[dict[str, Any]]:
    """`python -m tests.e2e.seeds.brief_NNN` pointed at `side` the way Dapr apps are:
    `DAPR_HTTP_PORT` and `DAPR_GRPC_PORT`; the host is the briefs' own (`localhost`, or the
    SDK's default 127.0.0.1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "SEEDS_"))}
    env |= {"DAPR_HTTP_PORT": str(side.http_port), "DAPR_GRPC_PORT": str(side.grpc_port)}
    if jobs_path:
        env["SEEDS_JOBS_PATH"] = jobs_path
    done = subprocess.run(
        [sys.executable, "-m", f"tests.e2e.seeds.brief_{brief}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    assert done.returncode == 0 and lines, (
        f"brief {brief} on {side.name}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    steps: list[dict[str, Any]] = json.loads(lines[-1].removeprefix(MARKER))
    return steps


def summary(step: dict[str, Any]) -> str:
    """One step's outcome in one line: its HTTP exchanges, then what the code returned or
    raised, and what it printed."""
    parts = [
        f"{m} {path} -> {status} {json.dumps(body)}" for m, path, status, body, _ in step["http"]
    ]
    if "raised" in step:
        parts.append(f"raised {json.dumps(step['raised'])}")
    else:
        parts.append(f"returned {json.dumps(step['returned'])}")
    if step["printed"]:
        parts.append(f"printed {json.dumps(step['printed'])}")
    return "; ".join(parts)


def outcomes(steps: list[dict[str, Any]]) -> dict[str, str]:
    return {step["step"]: summary(step) for step in steps}


# -- duetime's chosen differences ------------------------------------------------------------
# (run, step or "trigger <job>" or "event") -> (daprd, duetime, why)
_SERVES_V1 = (
    "duetime serves the Jobs API under /v1.0 too, as daprd 1.18 does; daprd 1.16.5 serves it"
    " only under /v1.0-alpha1 and takes /v1.0/jobs for service invocation"
)
_INVALID = "a client's mistake is a 400 in duetime (daprd: 500)"
_MISSING = "a missing job is a 404 in duetime (daprd: 500)"
_NO_SUCH = _err("DAPR_SCHEDULER_GET_JOB")
_BAD = _err("DAPR_SCHEDULER_SCHEDULE_JOB")


def _v1(step: str, ours: str, why: str = "") -> tuple[tuple[str, str], tuple[str, str, str]]:
    return ("002", step), (STEPS[("002", step)][1], ours, _SERVES_V1 + why)


def _a1(step: str, ours: str, why: str) -> tuple[tuple[str, str], tuple[str, str, str]]:
    return ("002@alpha1", step), (STEPS[("002@alpha1", step)][1], ours, why)


_R400, _R200 = _resp("400 Bad Request"), _resp("200 OK")
DIFFERENCES: dict[tuple[str, str], tuple[str, str, str]] = dict(
    [
        _v1(
            "get before it exists",
            f"{_x('GET', f'{_V1}/{_T2}', 404, _NO_SUCH)}; {_R404}",
            "; " + _MISSING,
        ),
        _v1(
            "delete before it exists",
            f"{_x('DELETE', f'{_V1}/{_T2}', 204)}; {_R204}",
            "; DELETE of a missing job is 204, as on /v1.0-alpha1",
        ),
        _v1(
            "schedule one-time (due 2025-01-15)",
            f"{_x('POST', f'{_V1}/{_T2}', 400, _BAD)}; {_R400}",
            "; the body is refused as on /v1.0-alpha1 (empty schedule), " + _INVALID,
        ),
        _v1(
            "get after scheduling",
            f"{_x('GET', f'{_V1}/{_T2}', 404, _NO_SUCH)}; {_R404}",
            "; " + _MISSING,
        ),
        _v1(
            "list",
            f"{_x('GET', _V1, 200, {'jobs': [], 'next': None})}; {_R200}",
            "; and duetime lists an app's jobs on GET /v1.0/jobs, which no daprd has"
            " (gRPC ListJobsAlpha1 only)",
        ),
        _v1(
            "schedule recurring (5-field cron, repeats 0)",
            f"{_x('POST', f'{_V1}/daily-standup', 400, _BAD)}; {_R400}",
            "; the body is refused as on /v1.0-alpha1 (repeats 0), " + _INVALID,
        ),
        _v1(
            "get the recurring job",
            f"{_x('GET', f'{_V1}/daily-standup', 404, _NO_SUCH)}; {_R404}",
            "; " + _MISSING,
        ),
        _a1(
            "get before it exists", f"{_x('GET', f'{_A1}/{_T2}', 404, _NO_SUCH)}; {_R404}", _MISSING
        ),
        _a1(
            "schedule one-time (due 2025-01-15)",
            f"{_x('POST', f'{_A1}/{_T2}', 400, _BAD)}; {_R400}",
            _INVALID + ': "schedule": "" is refused by both',
        ),
        _a1(
            "get after scheduling", f"{_x('GET', f'{_A1}/{_T2}', 404, _NO_SUCH)}; {_R404}", _MISSING
        ),
        _a1(
            "list",
            f"{_x('GET', _A1, 404, _err('ERR_NOT_FOUND'))}; {_R404}",
            "no list under /v1.0-alpha1 on either: both 404; daprd's body is its"
            " service-invocation error, duetime's its own ERR_NOT_FOUND",
        ),
        _a1(
            "schedule recurring (5-field cron, repeats 0)",
            f"{_x('POST', f'{_A1}/daily-standup', 400, _BAD)}; {_R400}",
            _INVALID + ": repeats 0 is refused by both",
        ),
        _a1(
            "get the recurring job",
            f"{_x('GET', f'{_A1}/daily-standup', 404, _NO_SUCH)}; {_R404}",
            _MISSING,
        ),
        (
            ("004", "get_job after delete_job"),
            (
                STEPS[("004", "get_job after delete_job")][1],
                f"{_x('GET', f'{_A1}/{_CLEANUP}', 404, _NO_SUCH)}; {_ret(None)}",
                _MISSING + "; the brief's get_job returns None on both",
            ),
        ),
    ]
)


def _problems(run: str, dapr: dict[str, str], ours: dict[str, str]) -> list[str]:
    problems = []
    for key in sorted(set(dapr) | set(ours)):
        theirs, mine = dapr.get(key, "(nothing)"), ours.get(key, "(nothing)")
        listed = DIFFERENCES.get((run, key))
        if theirs == mine and listed is not None:
            problems.append(f"{run} {key!r}: listed difference no longer occurs: both {theirs}")
        elif theirs != mine and listed is None:
            problems.append(
                f"{run} {key!r}: unlisted difference:\n  daprd:   {theirs}\n  duetime: {mine}"
            )
        elif theirs != mine and listed is not None and listed[:2] != (theirs, mine):
            problems.append(
                f"{run} {key!r}: difference changed:\n  daprd:   {theirs}\n  duetime: {mine}\n"
                f"  listed:  {listed[0]}\n           {listed[1]}"
            )
    return problems


def _check_daprd(run: str, dapr: dict[str, str]) -> list[str]:
    """daprd answered every step as recorded in `STEPS` (the reference has not moved), and
    every step of the run is recorded."""
    wanted = {step: daprd for (r, step), (_, daprd) in STEPS.items() if r == run}
    problems = [
        f"{run} {step!r}: daprd now answers\n  {dapr.get(step)}\n  recorded: {want}"
        for step, want in wanted.items()
        if dapr.get(step) != want
    ]
    problems += [f"{run} {step!r}: not in STEPS: {dapr[step]}" for step in set(dapr) - set(wanted)]
    return problems


# -- what reached the apps -------------------------------------------------------------------


def triggers(app: Subscriber, name: str) -> list[Got]:
    return app.on(f"/job/{name}")


def trigger_summary(got: list[Got]) -> str:
    if not got:
        return "never delivered"
    bodies = sorted({json.dumps(json.loads(g.body), sort_keys=True) for g in got})
    kinds = sorted({g.headers.get("content-type", "") for g in got})
    return f"{len(got)}x POST {got[0].path} {bodies} content-type {kinds}"


EVENT_FIELDS = ("specversion", "type", "source", "topic", "pubsubname", "datacontenttype", "data")


def event_summary(got: list[Got]) -> str:
    if not got:
        return "never delivered"
    events = [{k: g.event.get(k) for k in EVENT_FIELDS} for g in got]
    return f"{len(got)}x POST {got[0].path} " + json.dumps(events)


def wait_until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


# -- the tests -------------------------------------------------------------------------------


def _compare_runs(run: str, brief: str, daprd: Side, duetime: Side, **kw: Any) -> None:
    dapr_steps, our_steps = run_brief(daprd, brief, **kw), run_brief(duetime, brief, **kw)
    print("OBSERVED", json.dumps({"run": run, "daprd": dapr_steps, "duetime": our_steps}))
    dapr, ours = outcomes(dapr_steps), outcomes(our_steps)
    problems = _check_daprd(run, dapr) + _problems(run, dapr, ours)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("brief", ["000", "001"])
def test_publish_event_reaches_the_subscriber(brief: str, daprd: Side, duetime: Side) -> None:
    before = {side.name: len(side.app.on(ROUTE)) for side in (daprd, duetime)}
    _compare_runs(brief, brief, daprd, duetime)
    for side in (daprd, duetime):
        side.wait_for(ROUTE, before[side.name] + 1, timeout=20)
    time.sleep(0.5)  # nothing more may come
    got = {side.name: side.app.on(ROUTE)[before[side.name] :] for side in (daprd, duetime)}
    assert len(got["daprd"]) == 1, got["daprd"]
    assert json.loads(got["daprd"][0].event["data"])["task_id"] == 123  # a JSON text, as sent
    observed = {side: event_summary(got[side]) for side in got}
    print("EVENTS", json.dumps(observed))
    problems = _problems(brief, {"event": observed["daprd"]}, {"event": observed["duetime"]})
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("run", ["002", "002@alpha1"])
def test_brief_002_jobs_api_reference(run: str, daprd: Side, duetime: Side) -> None:
    """As written (`/v1.0/jobs`), and with its requests sent to `/v1.0-alpha1/jobs`: no call
    stores a job on daprd; its one-time job (due in the past) is refused by both."""
    _compare_runs(run, "002", daprd, duetime, jobs_path=ALPHA1 if run == "002@alpha1" else None)
    for side in (daprd, duetime):
        assert triggers(side.app, _T2) == [], side.name


class _Request:
    """What the brief's handler reads of a FastAPI `Request`: `await request.json()`."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def json(self) -> Any:
        return json.loads(self._body)


def test_brief_003_reminder_fires_and_its_handler_fails(daprd: Side, duetime: Side) -> None:
    name = "reminder-task-7"
    _compare_runs("003", "003", daprd, duetime)
    for side in (daprd, duetime):
        side.wait_for(f"/job/{name}", 1, timeout=20)
    time.sleep(0.5)
    got = {side.name: triggers(side.app, name) for side in (daprd, duetime)}
    want = {"task_id": 7, "user_id": "user-42", "type": "reminder"}
    assert json.loads(got["daprd"][0].body) == want  # the raw data, not {"data": ...}
    seen = {side: trigger_summary(got[side]) for side in got}
    print("TRIGGERS", json.dumps(seen))
    problems = _problems(
        "003", {f"trigger {name}": seen["daprd"]}, {f"trigger {name}": seen["duetime"]}
    )
    # the brief's handler, fed what each sidecar delivered, reads job_data["data"]
    for side in (daprd, duetime):
        with pytest.raises(KeyError, match="'data'"):
            asyncio.run(brief_003.handle_job_trigger(_Request(got[side.name][0].body)))  # type: ignore[arg-type]
    assert not problems, "\n".join(problems)


def test_brief_004_jobs_api_lesson(daprd: Side, duetime: Side) -> None:
    name = "quarterly-reminder"
    _compare_runs("004", "004", daprd, duetime)
    # due 2025-01-15T09:00:00Z, in the past: fires as soon as it is scheduled
    for side in (daprd, duetime):
        side.wait_for(f"/job/{name}", 1, timeout=20)
    time.sleep(0.5)
    got = {side.name: trigger_summary(triggers(side.app, name)) for side in (daprd, duetime)}
    print("TRIGGERS", json.dumps(got))
    assert got["daprd"].startswith("1x POST /job/quarterly-reminder"), got
    problems = _problems(
        "004", {f"trigger {name}": got["daprd"]}, {f"trigger {name}": got["duetime"]}
    )
    assert not problems, "\n".join(problems)


def test_publish_to_a_pubsub_nobody_configured(tmp_path: Path, scheduler: Scheduler) -> None:
    """Brief 000 against sidecars as they come (daprd with no component, duetime with its
    default `pubsub` only): `kafka-pubsub` does not exist, and both say so alike."""
    with (
        daprd_side(tmp_path / "dapr", scheduler, {}, []) as bare_dapr,
        duetime_side(tmp_path / "duetime", {}, []) as bare_duetime,
    ):
        _compare_runs("000@bare", "000", bare_dapr, bare_duetime)


def test_the_tables_agree() -> None:
    """Every listed difference is of a recorded step, a trigger or an event."""
    stray = [
        key
        for key in DIFFERENCES
        if key not in STEPS and not key[1].startswith(("trigger ", "event"))
    ]
    assert not stray, stray
    assert all(brief_says and daprd for brief_says, daprd in STEPS.values())
