"""Push subscription use cases: a user's devices, registered from the browser's
`PushSubscription.toJSON()`, listed and removed. Ownership is checked here."""

from __future__ import annotations

from duetime.clock import Clock
from duetime.delivery.push_model import (
    PushSubscription,
    SubscriptionError,
    check_keys,
    check_label,
)
from duetime.delivery.push_store import SqlPushSubscriptionStore
from duetime.delivery.ssrf import Target, UnsafeTarget, check_target
from duetime.delivery.vapid import VapidKeys

__all__ = ["PushService", "PushSubscriptionNotFound", "SubscriptionError", "check_endpoint"]


class PushSubscriptionNotFound(LookupError):
    pass


async def check_endpoint(endpoint: str, *, allow_private: bool) -> Target:
    """The endpoint, checked as a webhook URL is (`duetime.delivery.ssrf`: public addresses
    only, checked again before each push) and https. Plain http only where private targets
    are allowed (`DUETIME_WEBHOOK_ALLOW_PRIVATE`) and the host is loopback: a push service
    stand-in on 127.0.0.1. Raises SubscriptionError("endpoint", why)."""
    try:
        target = await check_target(endpoint, allow_private=allow_private, what="push endpoint")
    except UnsafeTarget as exc:
        raise SubscriptionError("endpoint", str(exc)) from None
    if target.scheme != "https":
        loopback = bool(target.addresses) and all(a.is_loopback for a in target.addresses)
        if not (allow_private and loopback):
            raise SubscriptionError(
                "endpoint",
                "must be an https URL (plain http only on loopback, with "
                "DUETIME_WEBHOOK_ALLOW_PRIVATE=true)",
            )
    return target


class PushService:
    def __init__(
        self,
        store: SqlPushSubscriptionStore,
        clock: Clock,
        keys: VapidKeys,
        *,
        allow_private: bool,
    ) -> None:
        self._store = store
        self._clock = clock
        self._keys = keys
        self._allow_private = allow_private

    @property
    def public_key(self) -> str:
        """The VAPID public key, base64url: the browser's `applicationServerKey`."""
        return self._keys.public_key

    async def subscribe(
        self, user_id: str, endpoint: str, p256dh: str, auth: str, label: str | None
    ) -> tuple[PushSubscription, bool]:
        """Register (or refresh: same endpoint, same id) a device; (it, whether it is new).
        Raises SubscriptionError naming the field; nothing is written then."""
        p256dh, auth = check_keys(p256dh, auth)
        await check_endpoint(endpoint, allow_private=self._allow_private)
        return await self._store.save(
            user_id, endpoint, p256dh, auth, check_label(label), self._clock.now_micros()
        )

    async def subscriptions(self, user_id: str) -> list[PushSubscription]:
        return await self._store.of_user(user_id)

    async def unsubscribe(self, user_id: str, subscription_id: str) -> None:
        """Raises PushSubscriptionNotFound unless it is one of `user_id`'s."""
        if not await self._store.delete(subscription_id, user_id):
            raise PushSubscriptionNotFound(subscription_id)
