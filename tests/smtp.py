"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from duetime.localdapr import free_port


class _Handler:
    def __init__(self, box: SmtpServer) -> None:
        self._box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._box.cond:
            self._box.messages.append((list(envelope.rcpt_tos), message))
            self._box.cond.notify_all()
        return self._box.answer


class SmtpServer:
    def __init__(self, **options: Any) -> None:
        """`options` go to aiosmtpd's `Controller` (e.g. `tls_context`, `ssl_context`)."""
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.answer = "250 OK"
        self.cond = threading.Condition()
        self.port = free_port()
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **options
        )

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        with self.cond:
            if not self.cond.wait_for(check, timeout):
                raise AssertionError(f"smtp: condition not met in {timeout}s")

    def env(self) -> dict[str, Any]:
        return {
            "DUETIME_SMTP_HOST": "127.0.0.1",
            "DUETIME_SMTP_PORT": str(self.port),
            "DUETIME_SMTP_SECURITY": "none",
            "DUETIME_SMTP_FROM": "reminders@duetime.test",
        }
