"""Bearer tokens: only valid HS256 tokens with a subject and a future expiry pass."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from duetime.auth import AuthError, issue_token, load_or_create_secret, verify_token
from duetime.settings import Settings

SECRET = "unit-secret-0123456789abcdef0123456789"
OTHER = "other-secret-0123456789abcdef012345"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_round_trip() -> None:
    token = issue_token(SECRET, "alice", ttl=timedelta(hours=1), now=NOW)
    assert verify_token(SECRET, token, now=NOW + timedelta(minutes=59)) == "alice"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (issue_token(SECRET, "a", ttl=timedelta(hours=1), now=NOW - timedelta(hours=2)), "expired"),
        (
            issue_token(
                "other-secret-0123456789abcdef012345", "a", ttl=timedelta(hours=1), now=NOW
            ),
            "signature",
        ),
        ("garbage", "malformed"),
        ("a.b.c", "malformed"),
        (f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'a', 'exp': 2**40})}.", "HS256"),
        (jwt.encode({"sub": "a", "exp": 2**40}, SECRET * 2, algorithm="HS512"), "HS256"),
        (jwt.encode({"exp": 2**40}, SECRET, algorithm="HS256"), "sub"),
        (jwt.encode({"sub": "a"}, SECRET, algorithm="HS256"), "exp"),
        (jwt.encode({"sub": "", "exp": 2**40}, SECRET, algorithm="HS256"), "sub"),
        (jwt.encode({"sub": 7, "exp": 2**40}, SECRET, algorithm="HS256"), "malformed"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token: str, message: str) -> None:
    with pytest.raises(AuthError, match=message):
        verify_token(SECRET, token, now=NOW)


def test_tampered_payload_is_refused() -> None:
    header, _, signature = issue_token(SECRET, "a", ttl=timedelta(hours=1), now=NOW).split(".")
    forged = f"{header}.{_b64({'sub': 'admin', 'exp': 2**40})}.{signature}"
    with pytest.raises(AuthError, match="signature"):
        verify_token(SECRET, forged, now=NOW)


@pytest.mark.parametrize("user", ["", "with space", "x" * 201, "tab\there"])
def test_bad_user_ids_cannot_get_a_token(user: str) -> None:
    with pytest.raises(ValueError, match="user id"):
        issue_token(SECRET, user, ttl=timedelta(hours=1), now=NOW)


def test_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = load_or_create_secret(settings)
    path = tmp_path / "data" / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 32
    assert load_or_create_secret(settings) == first
    assert load_or_create_secret(Settings(data_dir=tmp_path / "data", jwt_secret="env")) == "env"
