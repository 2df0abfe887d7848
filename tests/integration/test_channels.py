"""The channel adapters against real receivers: `WebhookChannel` and a real HTTP server,
`SmtpEmailChannel` and a real SMTP server (aiosmtpd), plain and with STARTTLS."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from duetime.delivery.model import Claimed, Delivery
from duetime.delivery.signing import verify
from duetime.delivery.smtp import SmtpConfig, SmtpEmailChannel
from duetime.delivery.webhook import WebhookChannel
from tests.conftest import free_port
from tests.e2e.conftest import Receiver
from tests.smtp import SmtpServer


def claimed(target: str, *, attempts: int = 0, delivery_id: str = "d" * 32) -> Claimed:
    payload = json.dumps(
        {
            "id": "e1",
            "type": "io.duetime.reminder.due",
            "data": {"title": "Pay rent", "message": "Pay rent is due now", "task_id": "t1"},
        },
        separators=(",", ":"),
    )
    d = Delivery(
        delivery_id,
        "n1",
        "alice",
        "webhook",
        target,
        "e1",
        payload,
        "pending",
        attempts,
        5,
        0,
        1_795_000_000_000_000,
        0,
        None,
        None,
        0,
    )
    return Claimed(d, "whsec_test")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def test_webhook_posts_the_same_signed_body_with_a_stable_idempotency_key(
    receiver: Receiver,
) -> None:
    channel = WebhookChannel(allow_private=True, timeout=5)
    try:
        first = await channel.send(claimed(f"{receiver.url}/hook"))
        again = await channel.send(claimed(f"{receiver.url}/hook", attempts=1))
    finally:
        await channel.aclose()
    assert first.ok and first.http_status == 200 and again.ok
    one, two = receiver.of("/hook")
    assert one.body == two.body and json.loads(one.body)["id"] == "e1"
    assert one.headers["idempotency-key"] == two.headers["idempotency-key"] == "d" * 32
    assert (one.headers["duetime-attempt"], two.headers["duetime-attempt"]) == ("1", "2")
    assert one.headers["content-type"] == "application/json"
    for r in (one, two):
        assert verify(
            "whsec_test",
            r.headers["duetime-signature"],
            r.headers["duetime-timestamp"],
            r.body,
            now=int(time.time()),
        )


async def test_webhook_refuses_a_private_target_at_send_time(receiver: Receiver) -> None:
    channel = WebhookChannel(allow_private=False, timeout=5)
    try:
        outcome = await channel.send(claimed(f"{receiver.url}/hook"))
        local = await channel.send(claimed(receiver.url.replace("127.0.0.1", "localhost")))
    finally:
        await channel.aclose()
    assert not outcome.ok and outcome.permanent and "loopback" in (outcome.error or "")
    assert not local.ok and local.permanent
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (503, False),
        (429, False),
        (408, False),
        (404, True),
        (400, True),
        (410, True),
        (302, True),
    ],
)
async def test_webhook_classifies_answers(receiver: Receiver, status: int, permanent: bool) -> None:
    receiver.respond = lambda name: status
    channel = WebhookChannel(allow_private=True, timeout=5)
    try:
        outcome = await channel.send(claimed(f"{receiver.url}/x"))
    finally:
        await channel.aclose()
    assert not outcome.ok and outcome.http_status == status
    assert outcome.permanent is permanent and str(status) in (outcome.error or "")


async def test_webhook_timeouts_and_refused_connections_are_retryable(receiver: Receiver) -> None:
    receiver.held.add("/slow")
    channel = WebhookChannel(allow_private=True, timeout=0.5)
    try:
        slow = await channel.send(claimed(f"{receiver.url}/slow"))
        refused = await channel.send(claimed(f"http://127.0.0.1:{free_port()}/x"))
    finally:
        await channel.aclose()
    assert not slow.ok and not slow.permanent and "in time" in (slow.error or "")
    assert not refused.ok and not refused.permanent and "cannot reach" in (refused.error or "")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


async def test_email_reaches_a_real_smtp_server_with_a_stable_message_id(smtp: SmtpServer) -> None:
    channel = SmtpEmailChannel(
        SmtpConfig(host="127.0.0.1", port=smtp.port, security="none", sender="r@duetime.test")
    )
    delivery = claimed("alice@example.com")
    assert (await channel.send(delivery)).ok
    assert (await channel.send(delivery)).ok  # a re-send: recognisably the same message
    smtp.wait_for(lambda: len(smtp.messages) == 2)
    (rcpt, one), (_, two) = smtp.messages
    assert rcpt == ["alice@example.com"]
    assert one["Message-ID"] == two["Message-ID"] == f"<{'d' * 32}@duetime.test>"
    assert one["Subject"] == "Reminder: Pay rent" and one["From"] == "r@duetime.test"
    assert "Pay rent is due now" in one.get_content()


async def test_email_refused_permanently_and_server_down_retryable(smtp: SmtpServer) -> None:
    smtp.answer = "550 mailbox unavailable"
    config = SmtpConfig(host="127.0.0.1", port=smtp.port, security="none", timeout=5)
    refused = await SmtpEmailChannel(config).send(claimed("alice@example.com"))
    assert not refused.ok and refused.permanent and "550" in (refused.error or "")
    down = SmtpConfig(host="127.0.0.1", port=free_port(), security="none", timeout=5)
    outcome = await SmtpEmailChannel(down).send(claimed("alice@example.com"))
    assert not outcome.ok and not outcome.permanent


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_starttls_and_implicit_tls(
    certificate: tuple[Path, Path], security: str
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    options: dict[str, Any] = (
        {"tls_context": server_tls, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": server_tls}
    )
    box = SmtpServer(**options).start()
    try:
        client_tls = ssl.create_default_context(cafile=str(cert))
        config = SmtpConfig(
            host="127.0.0.1",
            port=box.port,
            security=security,  # type: ignore[arg-type]
            ssl_context=client_tls,
            timeout=10,
        )
        outcome = await SmtpEmailChannel(config).send(claimed("alice@example.com"))
        assert outcome.ok, outcome.error
        box.wait_for(lambda: len(box.messages) == 1)
    finally:
        box.stop()
