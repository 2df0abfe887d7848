"""Delivery use cases: a user's channel settings, their deliveries and dead letters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from duetime.clock import Clock
from duetime.delivery.model import Attempt, ChannelSettings, Delivery, DeliveryState, check_email
from duetime.delivery.signing import new_secret
from duetime.delivery.ssrf import UnsafeTarget, check_target
from duetime.delivery.store import ReplayConflict, SqlDeliveryStore

__all__ = [
    "ChannelInput",
    "ChannelSettingsError",
    "DeliveryNotFound",
    "DeliveryService",
    "ReplayConflict",
]


class ChannelSettingsError(ValueError):
    """Settings that cannot be saved; the message says why. Nothing was written."""


class DeliveryNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ChannelInput:
    webhook_url: str | None = None
    webhook_enabled: bool = False
    email: str | None = None
    email_enabled: bool = False
    push_enabled: bool = False


class DeliveryService:
    def __init__(
        self,
        store: SqlDeliveryStore,
        clock: Clock,
        *,
        allow_private: bool,
        email_available: bool,
        kick: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._allow_private = allow_private
        self._email_available = email_available
        self._kick = kick

    async def channels(self, user_id: str) -> ChannelSettings:
        return await self._store.settings(user_id, new_secret(), self._clock.now_micros())

    async def set_channels(self, user_id: str, inp: ChannelInput) -> ChannelSettings:
        """Validate and save; raises ChannelSettingsError (nothing written) when the webhook
        URL is malformed, not http(s) or resolves to a forbidden address, or the email
        address is not valid."""
        url = inp.webhook_url or None
        if inp.webhook_enabled and url is None:
            raise ChannelSettingsError("webhook.url is required to enable the webhook channel")
        if url is not None:
            try:
                await check_target(url, allow_private=self._allow_private)
            except UnsafeTarget as exc:
                raise ChannelSettingsError(f"webhook.url: {exc}") from None
        email = inp.email or None
        if inp.email_enabled and email is None:
            raise ChannelSettingsError("email.address is required to enable the email channel")
        if email is not None:
            try:
                check_email(email)
            except ValueError as exc:
                raise ChannelSettingsError(f"email.address: {exc}") from None
        if inp.email_enabled and not self._email_available:
            raise ChannelSettingsError(
                "email.enabled: this server has no SMTP server configured (DUETIME_SMTP_HOST)"
            )
        current = await self.channels(user_id)
        updated = replace(
            current,
            webhook_url=url,
            webhook_enabled=inp.webhook_enabled,
            email=email,
            email_enabled=inp.email_enabled,
            push_enabled=inp.push_enabled,
        )
        await self._store.save_settings(updated, self._clock.now_micros())
        return updated

    async def rotate_secret(self, user_id: str) -> ChannelSettings:
        current = await self.channels(user_id)
        updated = replace(current, webhook_secret=new_secret())
        await self._store.save_settings(updated, self._clock.now_micros())
        return updated

    async def deliveries(
        self,
        user_id: str | None,
        *,
        state: DeliveryState | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[tuple[Delivery, list[Attempt]]]:
        """The user's deliveries, newest first; every user's for None (operators only)."""
        return await self._store.page(user_id, state=state, after=after, limit=limit)

    async def replay(self, user_id: str, delivery_id: str) -> tuple[Delivery, list[Attempt]]:
        """Give a dead letter one more attempt, now. Raises DeliveryNotFound, or
        ReplayConflict when it is not a dead letter (e.g. a replay is already under way)."""
        found = await self._store.replay(user_id, delivery_id, self._clock.now_micros())
        if found is None:
            raise DeliveryNotFound(delivery_id)
        if self._kick is not None:
            self._kick()
        return found, await self._store.attempts([found.id])
