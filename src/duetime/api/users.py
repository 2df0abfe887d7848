"""Who is calling the task API: the `sub` of a valid bearer token.

A bad or missing token is a 401 with FastAPI's `{"detail": "<reason>"}` body and
`WWW-Authenticate: Bearer`, the task API's error shape (not the Dapr one of /v1.0).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from duetime.auth import AuthError, TokenCache

_tokens = TokenCache()
"""Tokens verified before, keyed by secret and token: a repeat costs a dict lookup and the
time checks instead of an HMAC and two JSON decodes."""

_HOW = "send Authorization: Bearer <token> (`duetime token USER` prints one)"

# Only documents the scheme in OpenAPI (and the Authorize button of /docs);
# `current_user` reads and checks the header itself.
_user_token = HTTPBearer(
    auto_error=False,
    scheme_name="userToken",
    bearerFormat="JWT",
    description="A user's HS256 token, as printed by `duetime token USER`.",
)


async def current_user(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Security(_user_token)] = None,
) -> str:
    """The user id of the request's bearer token; 401 when there is none or it is not
    valid. Checked with `app.state.jwt_secret` at `app.state.clock.now()` when the app
    has a clock, else at the current time."""
    header = request.headers.get("authorization")
    if header is None:
        raise _unauthorized(f"missing Authorization header; {_HOW}")
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


CurrentUser = Annotated[str, Depends(current_user)]
"""The calling user's id, for a route or service parameter."""
