"""The `duetime` CLI against a running server, and the README's quick start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import free_port
from tests.e2e.conftest import Receiver, Server

ROOT = Path(__file__).resolve().parents[2]


def cli(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUETIME_URL": server_url}
    return subprocess.run(
        [sys.executable, "-m", "duetime", "jobs", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_jobs_commands_schedule_get_list_delete(make_server: Callable[..., Server]) -> None:
    server = make_server().start()
    made = cli(server.url, "schedule", "nightly", "--schedule", "@daily", "--data", '{"a": 1}')
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["name"] == "nightly"
    assert json.loads(made.stdout)["nextFireTime"].endswith("T00:00:00Z")

    got = cli(server.url, "get", "nightly")
    assert json.loads(got.stdout)["data"]["value"] == {"a": 1}
    listed = cli(server.url, "list", "--prefix", "night")
    assert [j["name"] for j in json.loads(listed.stdout)["jobs"]] == ["nightly"]

    again = cli(server.url, "schedule", "nightly", "--schedule", "@hourly")
    assert again.returncode == 1 and "already exists" in again.stderr
    replaced = cli(server.url, "schedule", "nightly", "--schedule", "@hourly", "--overwrite")
    assert json.loads(replaced.stdout)["schedule"] == "@hourly"

    deleted = cli(server.url, "delete", "nightly")
    assert deleted.returncode == 0 and json.loads(deleted.stdout) == {
        "name": "nightly",
        "deleted": True,
    }
    missing = cli(server.url, "get", "nightly")
    assert missing.returncode == 1 and "DAPR_SCHEDULER_GET_JOB" in missing.stderr


def test_jobs_commands_report_bad_input_clearly(make_server: Callable[..., Server]) -> None:
    server = make_server().start()
    bad_cron = cli(server.url, "schedule", "x", "--schedule", "0 9 * * *")
    assert bad_cron.returncode == 1
    assert "6 fields" in bad_cron.stderr and "Traceback" not in bad_cron.stderr
    bad_data = cli(server.url, "schedule", "x", "--due-time", "1h", "--data", "{nope")
    assert bad_data.returncode == 2 and "--data" in bad_data.stderr
    down = cli(f"http://127.0.0.1:{free_port()}", "list")
    assert down.returncode == 1 and "cannot reach duetime" in down.stderr
    assert "Traceback" not in down.stderr


def test_dead_letters_and_replay_from_the_cli(
    make_server: Callable[..., Server], receiver: Receiver
) -> None:
    healthy = False
    receiver.respond = lambda name: 200 if healthy else 503
    server = make_server(DUETIME_APP_URL=receiver.url).start()
    made = cli(server.url, "schedule", "fragile", "--due-time", "0s", "--drop")
    assert made.returncode == 0, made.stderr
    deadline = time.monotonic() + 10
    while not (letters := json.loads(cli(server.url, "dead-letters").stdout)["deadLetters"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert letters[0]["name"] == "fragile" and "503" in letters[0]["error"]
    failed = cli(server.url, "replay", letters[0]["id"])
    assert failed.returncode == 1 and "DUETIME_REPLAY_FAILED" in failed.stderr
    healthy = True
    replayed = cli(server.url, "replay", letters[0]["id"])
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == {"id": letters[0]["id"], "delivered": True}
    assert len(receiver.of("fragile")) == 3
    assert json.loads(cli(server.url, "dead-letters").stdout)["deadLetters"] == []


def test_readme_quick_start(make_server: Callable[..., Server], tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "receiver.log").open("w")
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "receiver.py"), str(port)], stdout=log
    )
    try:
        server = make_server(DUETIME_APP_URL=f"http://127.0.0.1:{port}").start()
        with server.client() as api:
            body = {"dueTime": "1s", "data": {"message": "hello, world"}}
            assert api.post("/v1.0/jobs/hello", json=body).status_code == 204
        deadline = time.monotonic() + 15
        while "POST /job/hello" not in (tmp_path / "receiver.log").read_text():
            assert time.monotonic() < deadline, "the receiver printed nothing"
            time.sleep(0.1)
        line = (tmp_path / "receiver.log").read_text()
        assert "late=false attempt=1" in line and '{"message":"hello, world"}' in line
    finally:
        app.terminate()
        app.wait(10)
        log.close()
