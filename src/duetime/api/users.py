"""Who is calling the task API: the `sub` of a valid bearer token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from duetime.auth import AuthError, verify_token


def current_user(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send Authorization: Bearer <token> (see `duetime token`)")
    clock = getattr(request.app.state, "clock", None)
    now = clock.now() if clock is not None else datetime.now(UTC)
    try:
        return verify_token(request.app.state.jwt_secret, token.strip(), now=now)
    except AuthError as exc:
        raise _unauthorized(str(exc)) from None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": "Bearer"})


CurrentUser = Annotated[str, Depends(current_user)]
