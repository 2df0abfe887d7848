"""What a push subscription must look like before it is stored: keys of the right lengths on
the right curve, an https endpoint on a public address (plain http on loopback only where
private targets are allowed), and a tidy device label."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from duetime.delivery.push_model import SubscriptionError, check_keys, check_label
from duetime.delivery.push_service import check_endpoint


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser_keys() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point), b64url(os.urandom(16))


def test_browser_keys_pass_and_padding_is_dropped() -> None:
    p256dh, auth = browser_keys()
    assert check_keys(p256dh, auth) == (p256dh, auth)
    padded = base64.urlsafe_b64encode(base64.urlsafe_b64decode(p256dh + "=")).decode()
    assert padded.endswith("=")
    assert check_keys(padded, auth + "==") == (p256dh, auth)


GOOD_P256DH, GOOD_AUTH = browser_keys()


@pytest.mark.parametrize(
    ("p256dh", "auth", "field", "says"),
    [
        ("not base64!", GOOD_AUTH, "keys.p256dh", "base64url"),
        (b64url(b"\x04" + b"\x01" * 63), GOOD_AUTH, "keys.p256dh", "not 64 bytes"),
        (b64url(b"\x02" + b"\x01" * 64), GOOD_AUTH, "keys.p256dh", "uncompressed"),
        (b64url(b"\x04" + b"\x01" * 64), GOOD_AUTH, "keys.p256dh", "not a point"),
        (GOOD_P256DH, "a+b/", "keys.auth", "base64url"),
        (GOOD_P256DH, b64url(os.urandom(15)), "keys.auth", "not 15"),
        (GOOD_P256DH, b64url(os.urandom(32)), "keys.auth", "not 32"),
        (GOOD_P256DH, "", "keys.auth", "base64url"),
    ],
    # the keys are random: ids of their own keep the test ids the same in every xdist worker
    ids=[
        "p256dh-text",
        "p256dh-short",
        "p256dh-compressed",
        "p256dh-off-curve",
        "auth-text",
        "auth-15",
        "auth-32",
        "auth-empty",
    ],
)
def test_bad_keys_name_the_field(p256dh: str, auth: str, field: str, says: str) -> None:
    with pytest.raises(SubscriptionError) as caught:
        check_keys(p256dh, auth)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and says in str(caught.value)


@pytest.mark.parametrize(
    ("endpoint", "allow_private", "says"),
    [
        ("ftp://push.example/1", True, "must use http or https"),
        ("https://10.1.2.3/push/1", False, "a private address"),
        ("https://127.0.0.1/push/1", False, "a loopback address"),
        ("http://127.0.0.1:9/push/1", False, "a loopback address"),
        ("http://10.1.2.3/push/1", True, "must be an https URL"),
        ("http://93.184.216.34/push/1", False, "must be an https URL"),
        ("https://user:pw@93.184.216.34/push", False, "user name or password"),
        ("https://93.184.216.34/push#x", False, "fragment"),
        ("https://93.184.216.34/" + "a" * 2100, False, "longer than"),
        ("push.example.com/x", False, "must use http or https"),
    ],
)
async def test_bad_endpoints_are_refused_with_the_reason(
    endpoint: str, allow_private: bool, says: str
) -> None:
    with pytest.raises(SubscriptionError) as caught:
        await check_endpoint(endpoint, allow_private=allow_private)
    assert caught.value.field == "endpoint"
    assert says in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    ("endpoint", "allow_private"),
    [
        ("https://93.184.216.34/push/abc", False),
        ("https://127.0.0.1:8443/push/abc", True),
        ("http://127.0.0.1:9/push/abc", True),
        ("http://[::1]:9/push/abc", True),
    ],
)
async def test_good_endpoints_pass(endpoint: str, allow_private: bool) -> None:
    target = await check_endpoint(endpoint, allow_private=allow_private)
    assert target.request_target == "/push/abc"


def test_labels_are_trimmed_and_cut() -> None:
    assert check_label(None) is None
    assert check_label("  Firefox\x00 on\n laptop ") == "Firefox on laptop"
    assert check_label("\x01\x02") is None
    assert check_label("x" * 300) == "x" * 200
