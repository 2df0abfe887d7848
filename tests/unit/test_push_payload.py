"""What a reminder's push says (the webhook's data plus actions, within the size a push
message may have), and the VAPID key and header: created once, private, kept; a JWT that
verifies with the header's key, for the endpoint's origin, for at most 24 h."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from duetime.delivery.outbox import due_event
from duetime.delivery.push_model import MAX_PLAINTEXT, encode_payload, push_payload
from duetime.delivery.vapid import (
    KEY_FILE,
    audience,
    b64url,
    b64url_decode,
    load_or_create_vapid_keys,
)
from duetime.settings import Settings


def reminder(title: str = "Pay rent", message: str = "Pay rent is due now") -> dict[str, object]:
    note = {
        "id": "0b9e" * 8,
        "user_id": "alice",
        "task_id": "t" * 32,
        "reminder_id": "r" * 32,
        "title": title,
        "message": message,
        "scheduled_us": 1_795_348_805_000_000,
        "fired_us": 1_795_348_805_001_000,
        "lateness_ms": 1.0,
    }
    return dict(due_event(note).body)


def test_the_push_carries_the_webhooks_data_and_the_actions() -> None:
    event = reminder()
    data = event["data"]
    assert isinstance(data, dict)
    payload = push_payload(event)
    assert payload == {
        "type": "reminder.due",
        "event_id": event["id"],
        "notification_id": data["notification_id"],
        "task_id": data["task_id"],
        "reminder_id": data["reminder_id"],
        "title": "Pay rent",
        "message": "Pay rent is due now",
        "scheduled_for": "2026-11-22T12:00:05Z",
        "fired_at": data["fired_at"],
        "late": False,
        "tag": data["notification_id"],
        "actions": [
            {
                "action": "snooze",
                "title": "Snooze 10 min",
                "method": "POST",
                "path": f"/api/notifications/{data['notification_id']}/snooze",
                "body": {"for": "PT10M"},
            },
            {
                "action": "done",
                "title": "Done",
                "method": "POST",
                "path": f"/api/tasks/{data['task_id']}/complete",
            },
        ],
    }
    assert json.loads(encode_payload(payload)) == payload


@pytest.mark.parametrize("title", ["x" * 5000, "ü" * 5000, "<script>" * 700])
def test_long_titles_and_messages_are_cut_to_fit_a_push(title: str) -> None:
    body = encode_payload(push_payload(reminder(title, title + " is due now")))
    assert len(body) <= MAX_PLAINTEXT
    decoded = json.loads(body)
    assert decoded["title"].endswith("…") and decoded["message"].endswith("…")
    assert decoded["title"][:-1] == title[: len(decoded["title"]) - 1]


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", **values)  # type: ignore[arg-type]


def test_the_key_is_created_once_privately_and_kept(tmp_path: Path) -> None:
    first = load_or_create_vapid_keys(settings(tmp_path))
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    again = load_or_create_vapid_keys(settings(tmp_path))
    assert again.public_key == first.public_key
    assert len(b64url_decode(first.public_key)) == 65
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]  # no temp file left


def test_a_key_from_the_settings_wins_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    keys = load_or_create_vapid_keys(settings(tmp_path, vapid_private_key=raw))
    assert keys.private_key.private_numbers() == key.private_numbers()
    assert not (tmp_path / "data" / KEY_FILE).exists()
    for bad in ("short", b64url(b"\x01" * 31), "-----BEGIN PRIVATE KEY-----\nnope\n"):
        with pytest.raises(ValueError, match="DUETIME_VAPID_PRIVATE_KEY"):
            load_or_create_vapid_keys(settings(tmp_path, vapid_private_key=bad))


def test_a_damaged_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / KEY_FILE).write_text("garbage")
    with pytest.raises(ValueError, match=KEY_FILE):
        load_or_create_vapid_keys(settings(tmp_path))
    assert (tmp_path / "data" / KEY_FILE).read_text() == "garbage"


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", "https://fcm.googleapis.com"),
        ("https://Push.Example.com:443/x?y=1", "https://push.example.com"),
        ("https://push.example.com:8443/x", "https://push.example.com:8443"),
        ("http://127.0.0.1:4567/push/a", "http://127.0.0.1:4567"),
    ],
)
def test_the_audience_is_the_endpoints_origin(endpoint: str, origin: str) -> None:
    assert audience(endpoint) == origin


def test_the_vapid_header_verifies_with_its_own_key_and_is_reused(tmp_path: Path) -> None:
    keys = load_or_create_vapid_keys(settings(tmp_path, vapid_subject="mailto:ops@example.com"))
    now = time.time()
    header = keys.authorization("https://push.example.com/x/1", now)
    scheme, _, rest = header.partition(" ")
    params = dict(part.strip().split("=", 1) for part in rest.split(","))
    assert scheme == "vapid" and params["k"] == keys.public_key
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b64url_decode(params["k"])
    )
    claims = jwt.decode(
        params["t"], public, algorithms=["ES256"], audience="https://push.example.com"
    )
    assert claims["sub"] == "mailto:ops@example.com"
    assert now < claims["exp"] <= now + 24 * 3600
    assert keys.authorization("https://push.example.com/x/2", now + 60) == header
    later = keys.authorization("https://push.example.com/x/2", now + 11.5 * 3600)
    assert later != header  # renewed before it runs out
    other = keys.authorization("https://updates.push.services.mozilla.com/wpush/v2/x", now)
    assert other != header
