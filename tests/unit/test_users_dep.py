"""`CurrentUser`: the `sub` of a valid bearer token, or a 401 `{"detail"}` saying why."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from duetime.api.errors import install_error_handlers
from duetime.api.users import CurrentUser
from duetime.auth import issue_token

SECRET = "users-dep-secret-0123456789abcdef0123"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def now_micros(self) -> int:
        return int(self.at.timestamp() * 1_000_000)


def make_app(*, clock: FixedClock | None = None, duetime_handlers: bool = False) -> FastAPI:
    app = FastAPI()
    app.state.jwt_secret = SECRET
    if clock is not None:
        app.state.clock = clock
    if duetime_handlers:
        install_error_handlers(app)

    @app.get("/api/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"user": user}

    return app


async def get_me(app: FastAPI, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"authorization": authorization}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/api/me", headers=headers)


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def token(user: str = "alice", *, ttl: timedelta = HOUR, secret: str = SECRET) -> str:
    return issue_token(secret, user, ttl=ttl, now=NOW)


ALG_NONE = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'bob', 'exp': 2**40})}."

BAD = [
    pytest.param(None, "missing Authorization header", id="no-header"),
    pytest.param("", "scheme must be Bearer", id="empty-header"),
    pytest.param("Basic YWxpY2U6cHc=", "scheme must be Bearer", id="basic"),
    pytest.param(f"Token {token()}", "scheme must be Bearer", id="other-scheme"),
    pytest.param(token(), "scheme must be Bearer", id="no-scheme"),
    pytest.param("Bearer", "empty bearer token", id="bearer-only"),
    pytest.param("Bearer    ", "empty bearer token", id="bearer-blank"),
    pytest.param("Bearer not.a.jwt", "malformed token", id="garbage"),
    pytest.param("Bearer x", "malformed token", id="one-part"),
    pytest.param(f"Bearer {token()} extra", "malformed token", id="two-tokens"),
    pytest.param(f"Bearer {token(ttl=-HOUR)}", "token expired", id="expired"),
    pytest.param(
        f"Bearer {token(secret='another-secret-another-secret-0123')}",
        "bad signature",
        id="wrong-secret",
    ),
    pytest.param(f"Bearer {ALG_NONE}", "algorithm must be HS256", id="alg-none"),
    pytest.param(
        f"Bearer {jwt.encode({'sub': 'a', 'exp': 2**40}, SECRET * 2, algorithm='HS512')}",
        "algorithm must be HS256",
        id="hs512",
    ),
    pytest.param(
        f"Bearer {jwt.encode({'exp': 2**40}, SECRET, algorithm='HS256')}",
        "no 'sub' claim",
        id="no-sub",
    ),
    pytest.param(
        f"Bearer {jwt.encode({'sub': 'a'}, SECRET, algorithm='HS256')}",
        "no 'exp' claim",
        id="no-exp",
    ),
]


@pytest.mark.parametrize("duetime_handlers", [False, True], ids=["fastapi", "duetime-handlers"])
@pytest.mark.parametrize(("authorization", "reason"), BAD)
async def test_bad_credentials_are_401_with_a_reason(
    authorization: str | None, reason: str, duetime_handlers: bool
) -> None:
    app = make_app(clock=FixedClock(NOW), duetime_handlers=duetime_handlers)
    r = await get_me(app, authorization)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    body = r.json()
    assert set(body) == {"detail"}  # the task API's shape, not the Dapr error body
    assert reason in body["detail"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_a_valid_token_gives_its_user(scheme: str) -> None:
    r = await get_me(make_app(clock=FixedClock(NOW)), f"{scheme} {token('alice')}")
    assert r.status_code == 200 and r.json() == {"user": "alice"}


async def test_surrounding_whitespace_is_tolerated() -> None:
    r = await get_me(make_app(clock=FixedClock(NOW)), f"  Bearer   {token('zoë')}  ")
    assert r.status_code == 200 and r.json() == {"user": "zoë"}


async def test_the_app_clock_decides_expiry() -> None:
    clock = FixedClock(NOW + HOUR - timedelta(seconds=1))
    app = make_app(clock=clock)
    assert (await get_me(app, f"Bearer {token()}")).status_code == 200
    clock.at = NOW + HOUR + timedelta(seconds=10)
    r = await get_me(app, f"Bearer {token()}")
    assert r.status_code == 401 and r.json() == {"detail": "token expired"}


async def test_without_a_clock_the_current_time_is_used() -> None:
    app = make_app()
    fresh = issue_token(SECRET, "alice", ttl=HOUR, now=datetime.now(UTC))
    assert (await get_me(app, f"Bearer {fresh}")).json() == {"user": "alice"}
    stale = issue_token(SECRET, "alice", ttl=HOUR, now=datetime.now(UTC) - 2 * HOUR)
    r = await get_me(app, f"Bearer {stale}")
    assert r.status_code == 401 and r.json() == {"detail": "token expired"}


def test_the_bearer_scheme_is_in_the_openapi_document() -> None:
    schema = make_app().openapi()
    assert schema["components"]["securitySchemes"]["userToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user's HS256 token, as printed by `duetime token USER`.",
    }
    assert schema["paths"]["/api/me"]["get"]["security"] == [{"userToken": []}]
