"""examples/receiver.py, the README's quick-start app, under a burst: 1,000 triggers due at
one instant all reach it on their first attempt, and it prints one whole line for each."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import free_port
from tests.e2e.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"POST /job/burst-(\d+) late=(true|false) attempt=1 "
    r"scheduled=\S+Z body=\{\"n\":\1\}"
)


def test_a_burst_of_1000_triggers_all_arrive_first_time(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    port = free_port()
    out = (tmp_path / "receiver.out").open("w")
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "receiver.py"), str(port)], stdout=out
    )
    try:
        server = make_server(DUETIME_APP_URL=f"http://127.0.0.1:{port}").start()
        due = (datetime.now(UTC) + timedelta(seconds=8)).isoformat()
        with server.client() as api:
            for n in range(1000):
                body = {"dueTime": due, "data": {"n": n}, "failurePolicy": {"drop": {}}}
                assert api.post(f"/v1.0/jobs/burst-{n}", json=body).status_code == 204
            deadline = time.monotonic() + 60
            while (tmp_path / "receiver.out").read_text().count("\n") < 1000:
                assert time.monotonic() < deadline, "the burst did not all arrive"
                time.sleep(0.2)
            time.sleep(1)  # nothing more should come
            letters = api.get("/v1.0/deadletters").json()["deadLetters"]
        lines = (tmp_path / "receiver.out").read_text().splitlines()
        assert letters == []
        bad = [line for line in lines if not LINE.fullmatch(line)]
        assert bad == [], bad[:5]
        assert sorted(int(LINE.fullmatch(line)[1]) for line in lines) == list(range(1000))
    finally:
        app.terminate()
        app.wait(10)
        out.close()
