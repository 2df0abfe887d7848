"""Webhook signatures: HMAC-SHA256 over `timestamp + "." + body` with the user's secret.

Headers on every webhook request:
    duetime-timestamp: <unix seconds>
    duetime-signature: v1=<hex digest>
The receiver recomputes the digest, compares in constant time and rejects old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "duetime-signature"
TIMESTAMP_HEADER = "duetime-timestamp"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `duetime-signature` header value for `body` sent at `timestamp`."""
    message = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, header: str, timestamp: str, body: bytes, *, now: int, tolerance: int = 300
) -> bool:
    """True when `header` signs `body` at `timestamp` with `secret`, and the timestamp is
    within `tolerance` seconds of `now` (replay protection)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = signature(secret, int(timestamp), body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))
