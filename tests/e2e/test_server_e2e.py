"""duetime as users run it: `duetime serve`, jobs over HTTP, triggers to a real app."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Receiver, Server


def rfc3339(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_job_is_delivered_to_the_app_like_a_dapr_sidecar_does(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    server = make_server(DUETIME_APP_URL=receiver.url, DUETIME_APP_API_TOKEN="app-secret").start()
    due = datetime.now(UTC) + timedelta(seconds=1)
    with server.client() as api:
        r = api.post("/v1.0/jobs/hello", json={"dueTime": rfc3339(due), "data": {"msg": "hi"}})
        assert r.status_code == 204 and r.content == b""
        listed = api.get("/v1.0/jobs", params={"prefix": "hel"}).json()["jobs"]
        assert [j["name"] for j in listed] == ["hello"]
        assert parse(listed[0]["nextFireTime"]) == due
        receiver.wait_for(lambda: len(receiver.of("hello")) == 1)
        [req] = receiver.of("hello")
        assert req.at >= due.timestamp()
        assert req.data == {"msg": "hi"}
        assert req.body == b'{"msg":"hi"}'
        assert req.headers["content-type"] == "application/json"
        assert req.headers["dapr-api-token"] == "app-secret"
        assert req.headers["duetime-late"] == "false"
        time.sleep(0.5)
        assert len(receiver.of("hello")) == 1
        assert api.get("/v1.0/jobs/hello").status_code == 404


def test_app_answers_404_counts_as_delivered_500_is_retried_then_dead_lettered(
    make_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    server_log = tmp_path / "server.log"
    statuses = {"not-mine": 404, "broken": 500}
    receiver.respond = lambda name: statuses.get(name, 200)
    server = make_server(DUETIME_APP_URL=receiver.url).start()
    with server.client() as api:
        for name in ("not-mine", "broken"):
            assert api.post(f"/v1.0/jobs/{name}", json={"dueTime": "0s"}).status_code == 204
        # Dapr's default policy: constant, 1 s apart, 3 retries → 4 attempts.
        receiver.wait_for(lambda: len(receiver.of("broken")) == 4, timeout=20)
        attempts = receiver.of("broken")
        assert [r.headers["duetime-attempt"] for r in attempts] == ["1", "2", "3", "4"]
        gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
        assert all(g >= 0.95 for g in gaps)
        assert len(receiver.of("not-mine")) == 1
        assert "job 'not-mine' (attempt 1): the app answered 404, so the trigger is dropped" in (
            server_log.read_text()
        )

        deadline = time.monotonic() + 10
        while not (dead := api.get("/v1.0/deadletters").json()["deadLetters"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        [letter] = dead
        assert letter["name"] == "broken" and letter["attempts"] == 4
        assert "500" in letter["error"]

        replay = api.post(f"/v1.0/deadletters/{letter['id']}/replay")
        assert replay.status_code == 502
        statuses["broken"] = 200
        replay = api.post(f"/v1.0/deadletters/{letter['id']}/replay")
        assert replay.status_code == 200 and replay.json() == {"delivered": True}
        assert len(receiver.of("broken")) == 6
        assert api.get("/v1.0/deadletters").json()["deadLetters"] == []


def test_a_recurring_job_the_app_answers_404_shows_the_count_in_the_list(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    statuses = {"not-mine": 404}
    receiver.respond = lambda name: statuses.get(name, 200)
    server = make_server(DUETIME_APP_URL=receiver.url).start()
    started = datetime.now(UTC)
    with server.client() as api:
        for name in ("not-mine", "mine"):
            r = api.post(f"/v1.0/jobs/{name}", json={"schedule": "@every 1s"})
            assert r.status_code == 204
        got = api.get("/v1.0/jobs/not-mine").json()

        def listed() -> dict[str, dict[str, Any]]:
            return {j["name"]: j for j in api.get("/v1.0/jobs").json()["jobs"]}

        counts = []
        deadline = time.monotonic() + 20
        while len(set(counts)) < 2:
            assert time.monotonic() < deadline, counts
            job = listed()["not-mine"]
            if "appNotFound" in job:
                counts.append(job["appNotFound"]["count"])
            time.sleep(0.2)
        assert counts == sorted(counts) and counts[0] >= 1  # rising, one per 404
        jobs = listed()
        last = parse(jobs["not-mine"]["appNotFound"]["last"])
        assert started < last <= datetime.now(UTC)
        assert jobs["not-mine"]["fired"] >= jobs["not-mine"]["appNotFound"]["count"]
        assert jobs["mine"]["fired"] >= 1 and "appNotFound" not in jobs["mine"]
        assert api.get("/v1.0/jobs/not-mine").json() == got  # Dapr's GET body, unchanged
        assert api.get("/v1.0/deadletters").json()["deadLetters"] == []


def test_a_404_is_logged_and_with_app_404_failure_retried_then_dead_lettered(
    make_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    receiver.respond = lambda name: 404
    server = make_server(DUETIME_APP_URL=receiver.url, DUETIME_APP_404="failure").start()
    policy = {"constant": {"interval": "1s", "maxRetries": 1}}
    with server.client() as api:
        r = api.post("/v1.0/jobs/gone", json={"dueTime": "0s", "failurePolicy": policy})
        assert r.status_code == 204, r.text
        deadline = time.monotonic() + 20
        while not (dead := api.get("/v1.0/deadletters").json()["deadLetters"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    [letter] = dead
    assert letter["name"] == "gone" and letter["attempts"] == 2
    assert "app answered 404: it has no handler for this job" in letter["error"]
    assert len(receiver.of("gone")) == 2
    log = (tmp_path / "server.log").read_text()
    assert log.count("job 'gone' (attempt 1): the app answered 404; counted as a failure") == 1
    assert "job 'gone' (attempt 2): the app answered 404; counted as a failure" in log


def test_kill_9_loses_nothing_marks_late_and_coalesces(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    env = {"DUETIME_APP_URL": receiver.url}
    server = make_server(**env).start()
    receiver.held.add("in-flight")
    with server.client() as api:
        assert api.post("/v1.0/jobs/in-flight", json={"dueTime": "0s"}).status_code == 204
        receiver.wait_for(lambda: len(receiver.of("in-flight")) == 1)
        t0 = datetime.now(UTC)
        soon = rfc3339(t0 + timedelta(seconds=2))
        for i in range(20):
            body = {"dueTime": soon, "data": i}
            assert api.post(f"/v1.0/jobs/missed-{i:02d}", json=body).status_code == 204
        # due well after the restart, even on a busy machine: it must not be "late"
        later = rfc3339(t0 + timedelta(seconds=20))
        assert api.post("/v1.0/jobs/future", json={"dueTime": later}).status_code == 204
        tick = {"schedule": "@every 1s", "dueTime": soon}
        assert api.post("/v1.0/jobs/tick", json=tick).status_code == 204
    server.kill()  # the in-flight trigger never got its answer recorded
    assert not any(r.name.startswith(("missed", "tick")) for r in receiver.requests)
    receiver.held.clear()
    time.sleep(max(0.0, (t0 + timedelta(seconds=5) - datetime.now(UTC)).total_seconds()))
    before_restart = len(receiver.requests)

    server = make_server(**env).start()
    restarted = time.time()
    receiver.wait_for(
        lambda: (
            all(receiver.of(f"missed-{i:02d}") for i in range(20))
            and len(receiver.of("in-flight")) == 2
            and len(receiver.of("future")) == 1
        ),
        timeout=40,
    )
    assert len(receiver.requests) > before_restart
    for i in range(20):
        [req] = receiver.of(f"missed-{i:02d}")
        assert req.headers["duetime-late"] == "true" and req.data == i
    assert receiver.of("in-flight")[1].headers["duetime-late"] == "true"  # refired
    [future] = receiver.of("future")
    assert future.headers["duetime-late"] == "false"
    ticks = receiver.of("tick")
    late_ticks = [t for t in ticks if t.headers["duetime-late"] == "true"]
    assert len(late_ticks) == 1  # ~3 ticks missed while down, fired once
    assert all(t.at >= restarted - 0.5 for t in ticks if t.headers["duetime-late"] == "false")


def test_api_token_guards_the_jobs_api_and_app_token_the_trigger_route(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(DUETIME_API_TOKEN="api-secret", DUETIME_APP_API_TOKEN="app-secret").start()
    body = {"dueTime": "1h"}
    assert httpx.post(f"{server.url}/v1.0/jobs/x", json=body).status_code == 401
    assert httpx.get(f"{server.url}/v1.0/jobs").status_code == 401
    bearer = {"authorization": "Bearer api-secret"}
    assert httpx.post(f"{server.url}/v1.0/jobs/x", json=body, headers=bearer).status_code == 204
    with server.client("api-secret") as api:
        assert api.get("/v1.0/jobs/x").json()["dueTime"] == "1h"
    assert httpx.post(f"{server.url}/job/x", json=1).status_code == 401
    assert httpx.get(f"{server.url}/healthz").status_code == 204


def test_refuses_a_public_address_without_a_token(make_server: Callable[..., Server]) -> None:
    server = make_server(DUETIME_HOST="0.0.0.0")
    try:
        server.start(timeout=15)
    except RuntimeError as exc:
        assert "DUETIME_API_TOKEN" in str(exc)
        assert "Traceback" not in str(exc)
    else:
        raise AssertionError("duetime started on 0.0.0.0 without a token")


def test_start_up_problems_are_one_clear_line(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    cases = [
        ("DUETIME_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/db", "cannot use the database"),
        ("DUETIME_MAX_CONCURRENCY", "many", "max_concurrency"),
        ("DUETIME_DATA_DIR", str(tmp_path / "a-file" / "data"), "cannot use the data dir"),
        ("DUETIME_DATABASE_URL", "sqlite:////proc/no/such.db", "unable to open database file"),
    ]
    for variable, value, expected in cases:
        server = make_server(**{variable: value})
        try:
            server.start(timeout=60)  # it exits long before; generous on a busy machine
        except RuntimeError as exc:
            said = str(exc).removeprefix("duetime exited: ")
            assert expected in said and "Traceback" not in said, said
            assert "pw@" not in said  # the password is not printed
            errors = [line for line in said.splitlines() if line.strip()]
            assert len(errors) == 1 and errors[0].startswith("Error: "), said
        else:
            raise AssertionError(f"duetime started with {variable}={value}")
        (tmp_path / "server.log").unlink()


def test_the_access_log_can_be_turned_off(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    for setting, logged in (("true", True), ("false", False)):
        server = make_server(DUETIME_ACCESS_LOG=setting).start()
        path = f"/healthz?probe={setting}"
        assert httpx.get(server.url + path).status_code < 300
        server.stop()
        assert (f"GET {path} " in (tmp_path / "server.log").read_text()) is logged
