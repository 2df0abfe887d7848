"""Bearer tokens for the task API: HS256 JWTs whose `sub` is the user id."""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import datetime, timedelta

import jwt

from duetime.settings import Settings

ALGORITHM = "HS256"
_SECRET_FILE = "jwt-secret"


class AuthError(Exception):
    """A token that cannot be accepted; the message says why."""


def load_or_create_secret(settings: Settings) -> str:
    """`DUETIME_JWT_SECRET`, or the secret kept in the data dir (created on first use)."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = settings.data_dir / _SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=settings.data_dir, prefix=".jwt-secret-")
    with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600
        f.write(secrets.token_urlsafe(48))
    if not path.exists():
        os.replace(tmp, path)
    else:
        os.unlink(tmp)  # another process won the race: use its secret
    return path.read_text().strip()


def issue_token(secret: str, user_id: str, *, ttl: timedelta, now: datetime) -> str:
    if not user_id or len(user_id) > 200 or any(c.isspace() or ord(c) < 32 for c in user_id):
        raise ValueError("a user id is 1-200 characters, without spaces or control characters")
    claims = {"sub": user_id, "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp())}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, *, now: datetime) -> str:
    """The user id of a valid token; raises `AuthError` for anything else."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("malformed token") from None
    if header.get("alg") != ALGORITHM:
        raise AuthError(f"token algorithm must be {ALGORITHM}")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        raise AuthError("bad token signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"token has no {exc.claim!r} claim") from None
    except jwt.PyJWTError:
        raise AuthError("malformed token") from None
    exp = claims["exp"]
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise AuthError("token 'exp' is not a number")
    if exp + 5 < now.timestamp():
        raise AuthError("token expired")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise AuthError("token 'sub' must be a non-empty string")
    return sub
