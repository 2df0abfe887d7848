"""The email adapter of the channel port: SMTP with aiosmtplib."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal

import aiosmtplib

from duetime.delivery.model import Claimed, Outcome
from duetime.timefmt import from_micros

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = "duetime@localhost"
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None


class SmtpEmailChannel:
    """Sends one plain-text email per delivery. `Message-ID` is derived from the delivery id,
    so a re-sent message (a retry after a lost answer, a replay) is recognisably the same.
    A 5xx answer (e.g. a refused recipient) is permanent; anything else is retried."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._domain = config.sender.rpartition("@")[2] or "duetime.local"

    async def aclose(self) -> None:
        return None

    def message(self, claimed: Claimed) -> EmailMessage:
        delivery = claimed.delivery
        data: dict[str, Any] = claimed.event().get("data", {})
        msg = EmailMessage()
        msg["From"] = self._config.sender
        msg["To"] = delivery.target
        msg["Subject"] = f"Reminder: {data.get('title', '')}".strip()
        msg["Message-ID"] = f"<{delivery.id}@{self._domain}>"
        msg["Date"] = format_datetime(from_micros(delivery.created_us))
        msg["X-Duetime-Event-Id"] = delivery.event_id
        msg.set_content(
            f"{data.get('message', '')}\n\n"
            f"Task: {data.get('task_id', '')}\nScheduled for: {data.get('scheduled_for', '')}\n"
        )
        return msg

    async def send(self, claimed: Claimed) -> Outcome:
        cfg = self._config
        try:
            await aiosmtplib.send(
                self.message(claimed),
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password,
                use_tls=cfg.security == "tls",
                start_tls=True if cfg.security == "starttls" else False,
                timeout=cfg.timeout,
                tls_context=cfg.ssl_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return Outcome(False, error=f"recipient refused: {exc}", permanent=True)
        except aiosmtplib.SMTPResponseException as exc:
            return Outcome(
                False, error=f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(False, error=f"SMTP {type(exc).__name__}: {exc}")
        return Outcome(True)
