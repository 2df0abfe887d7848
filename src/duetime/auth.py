"""Bearer tokens for the task API: HS256 JWTs whose `sub` is the user id.

Pure token logic: no HTTP. Times come from the caller (`now`, aware), never the wall clock.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import tempfile
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from duetime.settings import Settings

ALGORITHM = "HS256"
SECRET_FILE = "jwt-secret"
"""The secret's file name in `data_dir` when `DUETIME_JWT_SECRET` is not set."""

BAD_SIGNATURE = (
    "bad signature: the token was not signed with this server's secret (DUETIME_JWT_SECRET, "
    "else the jwt-secret file in its DUETIME_DATA_DIR); make tokens with `duetime token NAME` "
    "under the server's settings"
)
MIN_SECRET_BYTES = 32
"""RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits)."""
MAX_USER_ID = 200
LEEWAY_SECONDS = 5
"""Clock skew tolerated on `exp` and `nbf`."""
MAX_TOKEN_CHARS = 8192
"""Longer strings are refused before any decoding; duetime's tokens are well under 2 KB."""

_BAD_USER_ID_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})


class AuthError(Exception):
    """A token that cannot be accepted; the message says why and is safe to show the client."""


def load_or_create_secret(settings: Settings) -> str:
    """The HS256 key: `settings.jwt_secret` when set, else the one kept in
    `settings.data_dir / "jwt-secret"`, created (with `data_dir`) on first use.

    The file is written privately (mode 0600) and published atomically without ever
    overwriting an existing one, so processes racing to create it all return the same
    secret. Raises `ValueError` for a secret shorter than 32 bytes (set, or found in the
    file) and `OSError` when the file cannot be read or written.
    """
    if settings.jwt_secret:
        return _checked_secret(settings.jwt_secret, "DUETIME_JWT_SECRET")
    path = settings.data_dir / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_secret(path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=settings.data_dir, prefix=f".{SECRET_FILE}-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(48))
            f.flush()
            os.fsync(f.fileno())  # never publish a file a crash could leave empty
        _publish(Path(tmp), path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return _read_secret(path)


def _publish(tmp: Path, path: Path) -> None:
    """Give `tmp`'s content the name `path` unless `path` already exists: the first
    process to publish wins and everyone then reads its file."""
    try:
        os.link(tmp, path)  # atomic and never replaces an existing file
    except FileExistsError:
        pass
    except OSError:
        # A file system without hard links: replace is atomic but may overwrite a secret
        # another process published a moment ago; both re-read the file afterwards.
        if not path.exists():
            os.replace(tmp, path)


def _read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file; delete it to create a new secret") from None
    return _checked_secret(text.strip(), str(path))


def _checked_secret(secret: str, source: str) -> str:
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the JWT secret in {source} is shorter than {MIN_SECRET_BYTES} bytes; "
            "use a longer one (for example from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`)"
        )
    return secret


def check_user_id(user_id: str) -> str:
    """`user_id` if it can be a token's subject: 1-200 characters, no whitespace, no
    control or invisible formatting characters. Raises `ValueError` saying what is wrong."""
    if not user_id:
        raise ValueError("user id is empty")
    if len(user_id) > MAX_USER_ID:
        raise ValueError(f"user id is longer than {MAX_USER_ID} characters")
    for position, char in enumerate(user_id):
        if char.isspace() or unicodedata.category(char) in _BAD_USER_ID_CATEGORIES:
            raise ValueError(
                f"user id has whitespace or a control character (U+{ord(char):04X}) "
                f"at position {position}"
            )
    return user_id


def issue_token(secret: str, user_id: str, *, ttl: timedelta, now: datetime) -> str:
    """An HS256 JWT with `sub` = `user_id`, `iat` = `now` and `exp` = `now + ttl` (whole
    seconds). `now` must be aware. A zero or negative `ttl` gives an already expired token.
    Raises `ValueError` for a bad user id (see `check_user_id`), a naive `now`, or an
    expiry past the year 9999."""
    check_user_id(user_id)
    _require_aware(now)
    try:
        expires = now + ttl
    except OverflowError:
        raise ValueError(f"ttl {ttl} is too long: the token would expire after 9999") from None
    claims = {"sub": user_id, "iat": int(now.timestamp()), "exp": int(expires.timestamp())}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, *, now: datetime) -> str:
    """The user id (`sub`) of a valid token, checked at `now` (aware).

    Valid means: HS256 (nothing else, `alg: none` included), signed with `secret`, an
    `exp` later than `now` (less `LEEWAY_SECONDS`), an `nbf`, if present, not after it,
    no `aud`, and a `sub` that `check_user_id` accepts. `iat` is not checked. Everything
    else raises `AuthError` with a short reason; no PyJWT exception escapes.
    """
    return _verify(secret, token, now).sub


@dataclass(frozen=True)
class _Verified:
    """What a valid token says, once its signature and claims are checked: only the time
    claims need checking again at another moment."""

    sub: str
    exp: float
    nbf: float | None

    def check_times(self, moment: float) -> None:
        """The time checks of `verify_token`, in its order and with its messages."""
        if self.exp + LEEWAY_SECONDS <= moment:
            raise AuthError("token expired")
        if self.nbf is not None and self.nbf - LEEWAY_SECONDS > moment:
            raise AuthError("token not valid yet ('nbf' is in the future)")


def _verify(secret: str, token: str, now: datetime) -> _Verified:
    _require_aware(now)
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("malformed token: too long")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise AuthError("malformed token") from None
    if header.get("alg") != ALGORITHM:
        raise AuthError(f"token algorithm must be {ALGORITHM}")
    claims = _decode(secret, token)
    exp = _number_claim(claims, "exp")
    if exp is None:
        raise AuthError("token has no 'exp' claim")
    moment = now.timestamp()
    if exp + LEEWAY_SECONDS <= moment:
        raise AuthError("token expired")
    nbf = _number_claim(claims, "nbf")
    _Verified("", exp, nbf).check_times(moment)
    if "sub" not in claims:
        raise AuthError("token has no 'sub' claim")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise AuthError("token 'sub' must be a non-empty string")
    try:
        return _Verified(check_user_id(sub), exp, nbf)
    except ValueError:
        raise AuthError("token 'sub' is not a valid user id") from None


class TokenCache:
    """`verify_token` with a memory of the tokens it accepted (least recently used first
    out, at most `max_entries`).

    A token string and secret always carry the same claims, so for a token verified
    before only its `exp` and `nbf` are checked again, against each call's `now`: an
    expired token is refused exactly as `verify_token` refuses it. Refused tokens are
    never remembered.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Verified] = OrderedDict()

    def verify(self, secret: str, token: str, *, now: datetime) -> str:
        key = (secret, token)
        found = self._entries.get(key)
        if found is None:
            found = _verify(secret, token, now)
            self._entries[key] = found
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            return found.sub
        _require_aware(now)
        found.check_times(now.timestamp())
        self._entries.move_to_end(key)
        return found.sub


def _decode(secret: str, token: str) -> dict[str, Any]:
    """Signature and structure only: the time claims are checked against `now` by the
    caller, not against PyJWT's wall clock, and `sub` by duetime's own rules."""
    options: Any = {
        "verify_signature": True,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_sub": False,
        "verify_jti": False,
        "require": [],
    }
    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=[ALGORITHM], options=options)
    except jwt.InvalidSignatureError:
        raise AuthError(BAD_SIGNATURE) from None
    except jwt.InvalidAlgorithmError:
        raise AuthError(f"token algorithm must be {ALGORITHM}") from None
    except jwt.InvalidAudienceError:
        raise AuthError("token has an 'aud' claim; duetime's tokens have none") from None
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise AuthError("malformed token") from None
    return claims


def _number_claim(claims: dict[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(f"token '{name}' is not a number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        number = math.inf if value > 0 else -math.inf
    if not math.isfinite(number):
        raise AuthError(f"token '{name}' is not a finite number")
    return number


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
