"""Web Push rules: what a browser's subscription must look like, and what a reminder's push
says. Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from duetime.delivery.vapid import b64url_decode

P256DH_BYTES = 65
"""An uncompressed P-256 point: 0x04, then x and y of 32 bytes each (RFC 8291 §3.1)."""
AUTH_BYTES = 16
"""The subscription's authentication secret (RFC 8291 §3.2)."""
MAX_LABEL = 200
MAX_PLAINTEXT = 3000
"""A push message may carry 4,096 bytes (RFC 8030 §7.2); after the aes128gcm header (86),
padding and the tag (17) about 3,993 are left for the JSON. Long titles are cut to fit."""
MAX_TITLE = 500
MAX_MESSAGE = 1000
SNOOZE_FOR = "PT10M"


class SubscriptionError(ValueError):
    """A subscription that cannot be stored; `field` names the part that is wrong (as in the
    browser's `PushSubscription.toJSON()`: `endpoint`, `keys.p256dh`, `keys.auth`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class PushSubscription:
    """One device of one user: where its push service takes messages (`endpoint`, a
    capability URL) and the keys the message is encrypted for (base64url, as given)."""

    id: str
    user_id: str
    endpoint: str
    p256dh: str
    auth: str
    label: str | None
    created_us: int
    updated_us: int
    last_success_us: int | None = None
    last_failure_us: int | None = None
    last_error: str | None = None


def check_keys(p256dh: str, auth: str) -> tuple[str, str]:
    """The keys, stripped of padding; raises SubscriptionError unless `p256dh` decodes to an
    uncompressed point on P-256 and `auth` to 16 bytes."""
    try:
        point = b64url_decode(p256dh)
    except ValueError:
        raise SubscriptionError("keys.p256dh", "must be base64url") from None
    if len(point) != P256DH_BYTES or point[0] != 0x04:
        raise SubscriptionError(
            "keys.p256dh",
            f"must be an uncompressed P-256 point ({P256DH_BYTES} bytes starting with 0x04), "
            f"not {len(point)} bytes",
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise SubscriptionError("keys.p256dh", "is not a point on the P-256 curve") from None
    try:
        secret = b64url_decode(auth)
    except ValueError:
        raise SubscriptionError("keys.auth", "must be base64url") from None
    if len(secret) != AUTH_BYTES:
        raise SubscriptionError("keys.auth", f"must be {AUTH_BYTES} bytes, not {len(secret)}")
    return p256dh.strip().rstrip("="), auth.strip().rstrip("=")


def check_label(label: str | None) -> str | None:
    """The device label trimmed (control characters removed, at most 200 characters)."""
    if label is None:
        return None
    cleaned = "".join(ch for ch in label if ch.isprintable()).strip()
    return cleaned[:MAX_LABEL] or None


def push_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON a reminder's push carries, from its `reminder.due` CloudEvent: the data the
    webhook sends (task, title, message, due time) and the actions a notification offers.

    `actions[].path` is the task API route to call (with the user's credentials) for it;
    `body` its JSON body, if any."""
    data: Mapping[str, Any] = event.get("data") or {}
    notification_id = str(data.get("notification_id") or event.get("id") or "")
    task_id = str(data.get("task_id") or "")
    return {
        "type": "reminder.due",
        "event_id": str(event.get("id") or ""),
        "notification_id": notification_id,
        "task_id": task_id,
        "reminder_id": data.get("reminder_id"),
        "title": _cut(str(data.get("title") or ""), MAX_TITLE),
        "message": _cut(str(data.get("message") or ""), MAX_MESSAGE),
        "scheduled_for": data.get("scheduled_for"),
        "fired_at": data.get("fired_at"),
        "late": bool(data.get("late", False)),
        "tag": notification_id,
        "actions": [
            {
                "action": "snooze",
                "title": "Snooze 10 min",
                "method": "POST",
                "path": f"/api/notifications/{notification_id}/snooze",
                "body": {"for": SNOOZE_FOR},
            },
            {
                "action": "done",
                "title": "Done",
                "method": "POST",
                "path": f"/api/tasks/{task_id}/complete",
            },
        ],
    }


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON, cut to `MAX_PLAINTEXT` bytes by shortening the message, then the title."""
    body = _dump(payload)
    if len(body) <= MAX_PLAINTEXT:
        return body
    shorter = dict(payload)
    for key in ("message", "title"):
        over = len(body) - MAX_PLAINTEXT
        text = str(shorter.get(key) or "")
        shorter[key] = _cut(text, max(0, len(text) - over - 8))
        body = _dump(shorter)
        if len(body) <= MAX_PLAINTEXT:
            return body
    return body


def _dump(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
