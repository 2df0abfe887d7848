"""The account rules and records: pure, no I/O.

Emails are compared and stored normalised (`normalize_email`); a password must pass
`check_password`. Rule failures raise `AccountRuleError` naming the field, so the HTTP
layer answers 422 for that field and the CLI names its argument.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Literal

MAX_EMAIL = 254
"""RFC 5321's longest path, less the angle brackets."""
MAX_LOCAL_PART = 64
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
"""Characters; longer ones are refused before hashing (argon2 takes any length, but a
megabyte password is a way to burn CPU, not a password)."""

SignupMode = Literal["open", "invite", "closed"]

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LOCAL_FORBIDDEN = frozenset('()<>[]\\,;:"@')
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


class AccountRuleError(ValueError):
    """Input an account cannot take; `field` is the input's name (`email`, `password`…)
    and the message says what is wrong, safe to show the user."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_email(raw: str, field: str = "email") -> str:
    """The address as it is stored and compared: NFC, surrounding whitespace removed,
    lower-cased, an internationalised domain in its IDNA (`xn--`) form.

    The local part is lower-cased too: RFC 5321 lets it be case-sensitive, but no mail
    provider in use treats `Alice@` and `alice@` as two people, and two accounts for them
    would be a trap. Raises `AccountRuleError` for anything that is not `local@domain`
    with a host-name domain."""
    text = unicodedata.normalize("NFC", raw).strip()
    if not text:
        raise AccountRuleError(field, "an email address is required")
    if len(text) > MAX_EMAIL:
        raise AccountRuleError(field, f"longer than {MAX_EMAIL} characters")
    for char in text:
        if char.isspace() or unicodedata.category(char) in _BAD_CATEGORIES:
            raise AccountRuleError(
                field, f"has whitespace or a control character (U+{ord(char):04X})"
            )
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise AccountRuleError(field, "not an email address: expected name@domain")
    if len(local) > MAX_LOCAL_PART:
        raise AccountRuleError(field, f"the part before @ is longer than {MAX_LOCAL_PART}")
    if any(char in _LOCAL_FORBIDDEN for char in local):
        raise AccountRuleError(field, "the part before @ has a character mail cannot carry")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise AccountRuleError(field, "the part before @ has a misplaced '.'")
    return f"{local.lower()}@{_domain(domain, field)}"


def _domain(domain: str, field: str) -> str:
    name = domain.lower().removesuffix(".")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise AccountRuleError(field, f"{domain!r} is not a valid domain") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise AccountRuleError(field, f"{domain!r} is not a valid domain")
    return ascii_name


def normalize_password(password: str) -> str:
    """The password as it is hashed: NFKC (NIST SP 800-63B §5.1.1.2), so the same password
    typed on two keyboards or systems that compose accents differently is the same."""
    return unicodedata.normalize("NFKC", password)


def check_password(password: str, email: str, field: str = "password") -> str:
    """`password`, normalised, if it may be a new password for `email` (normalised):
    10 to 1024 characters, not the email address nor the part before its @. Raises
    `AccountRuleError` otherwise."""
    text = normalize_password(password)
    if len(text) < MIN_PASSWORD:
        raise AccountRuleError(field, f"shorter than {MIN_PASSWORD} characters")
    if len(text) > MAX_PASSWORD:
        raise AccountRuleError(field, f"longer than {MAX_PASSWORD} characters")
    folded = text.strip().casefold()
    local = email.rpartition("@")[0]
    if folded in {email.casefold(), local.casefold()}:
        raise AccountRuleError(field, "must not be your email address")
    if len(set(folded)) == 1:
        raise AccountRuleError(field, "must not be one character repeated")
    return text


def secret_digest(secret: str) -> str:
    """SHA-256 hex of a session token or invite code: what is stored, never the secret,
    so a copy of the database signs nobody in. (The secrets have 256 or 128 random bits:
    a fast hash is enough; no salt or stretching needed.)"""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret of `nbytes` random bytes."""
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True)
class Account:
    """One person who signs in with an email and a password. `user_id` is the owner id of
    their tasks: the same id a bearer token's `sub` carries."""

    user_id: str
    email: str
    password_hash: str
    is_admin: bool
    disabled: bool
    created_us: int
    updated_us: int


@dataclass(frozen=True)
class Session:
    """A signed-in browser. `id` is the SHA-256 of the cookie's token (`secret_digest`);
    `expires_us` moves forward with use (idle timeout), never past `created_us` plus the
    maximum age."""

    id: str
    user_id: str
    csrf_secret: str
    created_us: int
    last_seen_us: int
    expires_us: int
    user_agent: str | None = None


@dataclass(frozen=True)
class Invite:
    """A single-use sign-up code (stored as its digest) for `DUETIME_SIGNUP=invite`."""

    code_hash: str
    created_us: int
    expires_us: int
    used_us: int | None = None
    used_by: str | None = None
