"""The channel port: one adapter per technology (`WebhookChannel`, `SmtpEmailChannel`)."""

from __future__ import annotations

from typing import Protocol

from duetime.delivery.model import Claimed, Outcome


class Channel(Protocol):
    """Sends one attempt of one delivery.

    Contract: `send` never raises for a failed attempt; it returns an `Outcome` (ok, or the
    error, HTTP status and whether retrying can help). Each delivery carries a stable id
    (webhook `Idempotency-Key`, email `Message-ID`) so a receiver can recognise a re-send.
    The caller bounds the attempt with its own timeout as well.
    """

    async def send(self, claimed: Claimed) -> Outcome: ...

    async def aclose(self) -> None: ...
