"""`duetime token`: a token the server accepts, made with the secret in the data dir."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest

from duetime.auth import verify_token
from tests.e2e.conftest import Server


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DUETIME_DATA_DIR": str(data_dir), **env}
    if "DUETIME_JWT_SECRET" not in env:
        environ.pop("DUETIME_JWT_SECRET", None)
    return subprocess.run(
        [sys.executable, "-m", "duetime", "token", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_is_signed_with_a_secret_created_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"  # does not exist yet
    made = run(data, "alice", "--ttl", "1h")
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("\n") == 1 and made.stderr == ""  # only the token
    token = made.stdout.strip()
    secret_file = data / "jwt-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert verify_token(secret, token, now=datetime.now(UTC)) == "alice"
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600

    again = run(data, "bob", "--ttl", "PT8H")  # the same secret the second time
    assert again.returncode == 0, again.stderr
    assert verify_token(secret, again.stdout.strip(), now=datetime.now(UTC)) == "bob"
    assert secret_file.read_text().strip() == secret


def test_default_ttl_is_a_day_and_env_secret_wins(tmp_path: Path) -> None:
    env_secret = "cli-env-secret-0123456789abcdef0123456"
    made = run(tmp_path, "carol", DUETIME_JWT_SECRET=env_secret)
    assert made.returncode == 0, made.stderr
    claims = jwt.decode(made.stdout.strip(), env_secret, algorithms=["HS256"])
    assert claims["sub"] == "carol" and claims["exp"] - claims["iat"] == 24 * 3600
    assert not (tmp_path / "jwt-secret").exists()


def test_token_works_against_a_server_on_the_same_data_dir(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    data = tmp_path / "data"  # make_server's DUETIME_DATA_DIR
    made = run(data, "alice", "--ttl", "1h")
    assert made.returncode == 0, made.stderr
    server = make_server().start()
    r = httpx.get(
        f"{server.url}/api/tasks", headers={"authorization": f"Bearer {made.stdout.strip()}"}
    )
    assert r.status_code == 200 and r.json() == {"tasks": [], "next_cursor": None}


@pytest.mark.parametrize("ttl", ["forever", "", "1x", "-1h", "0s", "P9999Y", "R5/PT1H"])
def test_a_bad_ttl_is_a_usage_error(tmp_path: Path, ttl: str) -> None:
    result = run(tmp_path / "data", "alice", "--ttl", ttl)
    assert result.returncode == 2, result.stderr
    assert "--ttl" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing created for a refused request


@pytest.mark.parametrize("user", ["has space", "", "x" * 201, "tab\there"])
def test_a_bad_user_is_a_usage_error(tmp_path: Path, user: str) -> None:
    result = run(tmp_path / "data", user)
    assert result.returncode == 2, result.stderr
    assert "USER" in result.stderr and "user id" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_a_short_env_secret_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "alice", DUETIME_JWT_SECRET="short")
    assert result.returncode == 1
    assert "shorter than 32 bytes" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_ttl_accepts_go_and_iso_durations(tmp_path: Path) -> None:
    secret = "cli-env-secret-0123456789abcdef0123456"
    for ttl, seconds in [("1h30m", 5400), ("PT8H", 8 * 3600), ("P1W", 7 * 86400)]:
        made = run(tmp_path, "dave", "--ttl", ttl, DUETIME_JWT_SECRET=secret)
        assert made.returncode == 0, made.stderr
        claims = jwt.decode(made.stdout.strip(), secret, algorithms=["HS256"])
        assert claims["exp"] - claims["iat"] == seconds
