"""`duetime token`: a token the server accepts, made with the secret in the data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from duetime.auth import verify_token
from tests.e2e.conftest import Server


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DUETIME_DATA_DIR": str(data_dir)}
    env.pop("DUETIME_JWT_SECRET", None)
    return subprocess.run(
        [sys.executable, "-m", "duetime", "token", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_works_against_a_server_on_the_same_data_dir(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    made = run(data, "alice", "--ttl", "1h")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    secret = (data / "jwt-secret").read_text().strip()
    assert verify_token(secret, token, now=datetime.now(UTC)) == "alice"
    server = make_server().start()  # same DUETIME_DATA_DIR: the same secret
    r = httpx.get(f"{server.url}/api/tasks", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json() == {"tasks": [], "next_cursor": None}


def test_bad_ttl_and_user_are_usage_errors(tmp_path: Path) -> None:
    bad_ttl = run(tmp_path, "alice", "--ttl", "forever")
    assert bad_ttl.returncode == 2 and "--ttl" in bad_ttl.stderr
    assert "Traceback" not in bad_ttl.stderr
    bad_user = run(tmp_path, "has space")
    assert bad_user.returncode == 1 and "user id" in bad_user.stderr
