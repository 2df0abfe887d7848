"""The webhook adapter of the channel port: a signed JSON POST with httpx."""

from __future__ import annotations

import ssl
import time

from duetime import __version__
from duetime.delivery.http1 import Http1Client, HttpError, HttpTimeout
from duetime.delivery.model import Claimed, Outcome
from duetime.delivery.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from duetime.delivery.ssrf import UnsafeTarget, check_target
from duetime.tracing import inject

_RETRYABLE = {408, 425, 429}
MAX_RETRY_AFTER = 3600.0


class WebhookChannel:
    """POSTs the reminder's CloudEvent (the same bytes on every attempt) to the user's URL.

    Headers: `Idempotency-Key` (the delivery id: the same on retries and replays),
    `duetime-event-id`, `duetime-attempt`, `duetime-timestamp` and `duetime-signature`
    (see `duetime.delivery.signing`); `traceparent` and `tracestate` (W3C Trace Context) of
    the attempt's span when it is traced. 2xx is delivered; 408, 425, 429 and 5xx, timeouts and
    connection errors are retried (honouring `Retry-After` seconds); redirects and other
    statuses are permanent failures. The target is checked for SSRF before each attempt and
    called on the very address that was checked (no second lookup); for https the
    certificate must match the URL's host.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        allow_private: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._client = Http1Client(
            timeout=timeout,
            max_connections=max_connections,
            ssl_context=ssl_context,
            user_agent=f"duetime/{__version__}",
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, claimed: Claimed) -> Outcome:
        delivery = claimed.delivery
        try:
            target = await check_target(delivery.target, allow_private=self._allow_private)
        except UnsafeTarget as exc:
            return Outcome(False, error=str(exc), permanent=True)
        host = target.host
        body = delivery.payload.encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "idempotency-key": delivery.id,
            "duetime-event-id": delivery.event_id,
            "duetime-attempt": str(claimed.attempt),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(claimed.secret, timestamp, body),
        }
        inject(headers)
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
            return Outcome(False, error=f"no answer from {host} in time")
        except HttpError as exc:
            return Outcome(False, error=f"cannot reach {host}: {exc}")
        status = answer.status
        if 200 <= status < 300:
            return Outcome(True, http_status=status)
        if 300 <= status < 400:
            return Outcome(
                False,
                error=f"HTTP {status}: redirects are not followed",
                http_status=status,
                permanent=True,
            )
        retryable = status >= 500 or status in _RETRYABLE
        return Outcome(
            False,
            error=f"HTTP {status}",
            http_status=status,
            permanent=not retryable,
            retry_after=_retry_after(answer.headers.get("retry-after")),
        )


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)
