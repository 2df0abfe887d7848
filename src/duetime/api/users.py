"""Who is calling the task API: the `sub` of a valid bearer token, or the account of a
browser's session cookie (`duetime_session`, duetime.accounts).

A bad or missing token is a 401 with FastAPI's `{"detail": "<reason>"}` body and
`WWW-Authenticate: Bearer`, the task API's error shape (not the Dapr one of /v1.0).

A cookie is sent by the browser on its own (it is ambient), so a request that changes
something (POST, PUT, PATCH, DELETE) on a session must also prove it comes from duetime's
own pages: the session's CSRF token in `X-CSRF-Token` (or the `csrf_token` field of an
urlencoded form), and no `Origin` or `Sec-Fetch-Site` saying another site sent it; else 403.
A bearer token is not ambient: it needs neither, and is checked exactly as before.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from duetime.accounts.model import Account, Session
from duetime.accounts.service import AccountService
from duetime.auth import AuthError, TokenCache

SESSION_COOKIE = "duetime_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_tokens = TokenCache()
"""Tokens verified before, keyed by secret and token: a repeat costs a dict lookup and the
time checks instead of an HMAC and two JSON decodes."""

_HOW = (
    "send Authorization: Bearer <token> (`duetime token USER` prints one), "
    "or sign in (POST /api/auth/signin) for a session cookie"
)
_SIGNED_OUT = "session expired or signed out; sign in again (POST /api/auth/signin)"

# Only documents the scheme in OpenAPI (and the Authorize button of /docs);
# `current_user` reads and checks the header itself. The session cookie is not declared as
# a second scheme: /docs' Authorize button cannot send the CSRF header it needs.
_user_token = HTTPBearer(
    auto_error=False,
    scheme_name="userToken",
    bearerFormat="JWT",
    description="A user's HS256 token, as printed by `duetime token USER`.",
)


@dataclass(frozen=True)
class Caller:
    """Who is calling, and how: `session` and `account` are set for a session cookie,
    None for a bearer token."""

    user_id: str
    session: Session | None = None
    account: Account | None = None


async def current_user(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Security(_user_token)] = None,
) -> str:
    """The user id of the request's bearer token; 401 when there is none or it is not
    valid. Checked with `app.state.jwt_secret` at `app.state.clock.now()` when the app
    has a clock, else at the current time. Without an Authorization header, a session
    cookie's account when the app has accounts (`app.state.accounts`), CSRF-checked."""
    header = request.headers.get("authorization")
    if header is None:
        return (await _session_caller(request)).user_id
    return _bearer_user(request, header)


async def current_caller(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Security(_user_token)] = None,
) -> Caller:
    """`current_user`, saying also whether it is a session (and whose)."""
    header = request.headers.get("authorization")
    if header is None:
        return await _session_caller(request)
    return Caller(_bearer_user(request, header))


async def _session_caller(request: Request) -> Caller:
    accounts: AccountService | None = getattr(request.app.state, "accounts", None)
    token = request.cookies.get(SESSION_COOKIE)
    if token is None or accounts is None:
        raise _unauthorized(f"missing Authorization header; {_HOW}")
    found = await accounts.authenticate(token)
    if found is None:
        raise HTTPException(
            401,
            detail=_SIGNED_OUT,
            headers={"WWW-Authenticate": "Bearer", "set-cookie": clear_cookie_header()},
        )
    session, account = found
    if request.method in UNSAFE_METHODS:
        await check_csrf(request, session.csrf_secret)
    return Caller(account.user_id, session, account)


def _bearer_user(request: Request, header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _unauthorized(f"Authorization scheme must be Bearer; {_HOW}")
    token = token.strip()
    if not token:
        raise _unauthorized(f"empty bearer token; {_HOW}")
    clock = getattr(request.app.state, "clock", None)
    now = clock.now() if clock is not None else datetime.now(UTC)
    try:
        return _tokens.verify(request.app.state.jwt_secret, token, now=now)
    except AuthError as exc:
        raise _unauthorized(str(exc)) from None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def cross_site(request: Request) -> str | None:
    """Why the request looks sent by another site, or None: `Sec-Fetch-Site` other than
    `same-origin` or `none` (a typed URL, a bookmark), or an `Origin` whose host and port
    are not the request's `Host`. The scheme is not compared: behind a proxy that ends TLS
    the request is `http` while the page was `https`."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site.strip()})"
    origin = request.headers.get("origin")
    if origin is not None and not _same_host(origin, request.headers.get("host", "")):
        return f"cross-site request refused: Origin {origin!r} is not this server"
    return None


def _same_host(origin: str, host: str) -> bool:
    try:
        seen = urlsplit(origin.strip())
        own = urlsplit(f"//{host.strip()}")
        if seen.scheme not in ("http", "https") or not seen.hostname or not own.hostname:
            return False  # "null" (a sandboxed or file: page), or no Host
        default = 443 if seen.scheme == "https" else 80
        return (seen.hostname, seen.port or default) == (own.hostname, own.port or default)
    except ValueError:  # a port that is not a number
        return False


async def check_csrf(request: Request, secret: str) -> None:
    """403 unless the request carries `secret` in `X-CSRF-Token` (or an urlencoded form's
    `csrf_token`) and is not cross-site (`cross_site`)."""
    reason = cross_site(request)
    if reason is not None:
        raise HTTPException(403, detail=reason)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").lower().startswith(
        "application/x-www-form-urlencoded"
    ):
        body = (await request.body()).decode("utf-8", "replace")
        given = dict(parse_qsl(body, max_num_fields=1000)).get(CSRF_FIELD)
    if given is None:
        raise HTTPException(
            403,
            detail=(
                f"missing {CSRF_HEADER} header: a change made with a session cookie must "
                "carry the session's CSRF token (csrf_token of GET /api/auth/session)"
            ),
        )
    if not hmac.compare_digest(given.strip().encode("utf-8"), secret.encode("utf-8")):
        raise HTTPException(
            403,
            detail=(
                f"wrong {CSRF_HEADER}: it is not this session's CSRF token "
                "(csrf_token of GET /api/auth/session)"
            ),
        )


def clear_cookie_header() -> str:
    """A `Set-Cookie` value that removes the session cookie."""
    return f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"


CurrentUser = Annotated[str, Depends(current_user)]
"""The calling user's id, for a route or service parameter."""
CurrentCaller = Annotated[Caller, Depends(current_caller)]
"""The caller and, for a session, its session and account."""
