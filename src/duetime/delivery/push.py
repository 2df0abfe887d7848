"""The Web Push adapter of the channel port: a reminder as an encrypted push message
(RFC 8030 push protocol, RFC 8291 `aes128gcm` encryption, RFC 8292 VAPID) to one device.

One delivery per device (subscription), not one per channel: each device then has its own
attempts, retries, dead letter and `history` in `/api/deliveries`, a phone that is offline or
whose subscription expired does not hold back or re-send to the laptop, and a retry goes only
where the last attempt failed. The delivery's `device` is the subscription's id; its
`target` the endpoint when the reminder fired.

How it sends: pywebpush's `WebPusher(...).encode()` encrypts (http_ece underneath) and
py_vapid signs the VAPID JWT; the request itself goes through duetime's own async HTTP/1.1
client, the webhook's (`Http1Client`), not pywebpush's `send` (requests, blocking) or
`send_async` (aiohttp): the endpoint is a URL a user gave, so it gets the webhook's SSRF
guard: checked before each push and connected to on the very address that was checked
(`duetime.delivery.ssrf`), which neither of pywebpush's clients can do. Encryption is CPU
work, ≈ 0.3-0.4 ms per message (an ephemeral ECDH key, HKDF, AES-GCM; measured on this
2-core machine), so it runs on a small thread pool of its own (2 threads), never on the
event loop and never queued behind the DNS lookups of the default executor; pywebpush
itself (≈ 250 ms of imports: requests and aiohttp) is imported there on first use, not at
start. A VAPID JWT is signed once per push service origin and reused for 11 of its 12 hours.

Answers: 2xx delivered. 404 and 410 mean the subscription is gone (expired, unsubscribed):
the subscription is removed and the delivery fails permanently. 408, 425, 429 and 5xx,
timeouts and connection errors are retried (honouring `Retry-After` seconds); 413 and other
4xx (e.g. a VAPID key the push service refuses) are permanent.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from duetime import __version__
from duetime.clock import Clock, SystemClock
from duetime.delivery.http1 import Http1Client, HttpError, HttpTimeout
from duetime.delivery.model import Claimed, Outcome
from duetime.delivery.push_model import (
    PushSubscription,
    SubscriptionError,
    encode_payload,
    push_payload,
)
from duetime.delivery.push_service import check_endpoint
from duetime.delivery.push_store import SqlPushSubscriptionStore
from duetime.delivery.vapid import VapidKeys

_RETRYABLE = {408, 425, 429}
_GONE = {404, 410}
MAX_RETRY_AFTER = 3600.0


def encrypt(subscription: PushSubscription, plaintext: bytes) -> bytes:
    """The `aes128gcm` body of a push of `plaintext` to `subscription` (RFC 8291), with a
    fresh ephemeral key and salt. CPU-bound; blocking."""
    from pywebpush import WebPusher  # ≈ 250 ms of imports: paid here, off the loop

    info = {
        "endpoint": subscription.endpoint,
        "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
    }
    encoded: Any = WebPusher(info).encode(plaintext, content_encoding="aes128gcm")
    body: bytes = encoded["body"]
    return body


class WebPushChannel:
    """Sends a reminder's push to the device of `claimed.delivery.device`.

    Headers: `Authorization: vapid t=<JWT>, k=<public key>`, `Content-Encoding: aes128gcm`,
    `TTL` (`ttl` seconds the push service may keep it for an offline device), `Urgency:
    high` (a reminder is worth waking the device for) and `Topic` (the notification id: a
    retry replaces an earlier copy the push service still holds, so a device shows it once).
    The plaintext is `push_model.push_payload` of the delivery's CloudEvent, as JSON.
    """

    def __init__(
        self,
        subscriptions: SqlPushSubscriptionStore,
        keys: VapidKeys,
        *,
        ttl: int = 86400,
        timeout: float = 10.0,
        max_connections: int = 100,
        allow_private: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`clock`: the time of the JWT's `exp` and of a subscription's last outcome."""
        self._subscriptions = subscriptions
        self._keys = keys
        self._ttl = ttl
        self._allow_private = allow_private
        self._clock = clock or SystemClock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="duetime-push")
        self._client = Http1Client(
            timeout=timeout,
            max_connections=max_connections,
            ssl_context=ssl_context,
            user_agent=f"duetime/{__version__}",
        )

    async def aclose(self) -> None:
        await self._client.aclose()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def send(self, claimed: Claimed) -> Outcome:
        delivery = claimed.delivery
        subscription = await self._subscriptions.get(delivery.device)
        if subscription is None or subscription.user_id != delivery.user_id:
            return Outcome(
                False, error="the push subscription was removed (device gone)", permanent=True
            )
        try:
            target = await check_endpoint(subscription.endpoint, allow_private=self._allow_private)
        except SubscriptionError as exc:
            return Outcome(False, error=str(exc), permanent=True)
        plaintext = encode_payload(push_payload(json.loads(delivery.payload)))
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(self._pool, encrypt, subscription, plaintext)
        headers = {
            "authorization": self._keys.authorization(
                subscription.endpoint, self._clock.now_micros() / 1e6
            ),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "ttl": str(self._ttl),
            "urgency": "high",
            "topic": delivery.notification_id[:32],
        }
        host = target.host
        try:
            answer = await self._client.post(
                scheme=target.scheme,
                connect_host=str(target.addresses[0]),
                port=target.port,
                host_header=target.host_header,
                server_name=target.host,
                target=target.request_target,
                body=body,
                headers=headers,
            )
        except HttpTimeout:
            return await self._failed(
                subscription, Outcome(False, error=f"no answer from {host} in time")
            )
        except HttpError as exc:
            return await self._failed(
                subscription, Outcome(False, error=f"cannot reach {host}: {exc}")
            )
        status = answer.status
        if 200 <= status < 300:
            await self._subscriptions.mark(subscription.id, self._clock.now_micros(), None)
            return Outcome(True, http_status=status)
        if status in _GONE:
            await self._subscriptions.delete_endpoint(subscription.id, subscription.endpoint)
            return Outcome(
                False,
                error=f"HTTP {status}: the push service says the subscription is gone; removed",
                http_status=status,
                permanent=True,
            )
        retryable = status >= 500 or status in _RETRYABLE
        return await self._failed(
            subscription,
            Outcome(
                False,
                error=f"HTTP {status}" + ("" if retryable else ": refused by the push service"),
                http_status=status,
                permanent=not retryable,
                retry_after=_retry_after(answer.headers.get("retry-after")),
            ),
        )

    async def _failed(self, subscription: PushSubscription, outcome: Outcome) -> Outcome:
        await self._subscriptions.mark(subscription.id, self._clock.now_micros(), outcome.error)
        return outcome


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)
