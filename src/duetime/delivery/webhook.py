"""The webhook adapter of the channel port: a signed JSON POST with httpx."""

from __future__ import annotations

import time

import httpx

from duetime import __version__
from duetime.delivery.model import Claimed, Outcome
from duetime.delivery.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from duetime.delivery.ssrf import UnsafeTarget, check_target

_RETRYABLE = {408, 425, 429}
MAX_RETRY_AFTER = 3600.0


class WebhookChannel:
    """POSTs the reminder's CloudEvent (the same bytes on every attempt) to the user's URL.

    Headers: `Idempotency-Key` (the delivery id: the same on retries and replays),
    `duetime-event-id`, `duetime-attempt`, `duetime-timestamp` and `duetime-signature`
    (see `duetime.delivery.signing`). 2xx is delivered; 408, 425, 429 and 5xx, timeouts and
    connection errors are retried (honouring `Retry-After` seconds); redirects and other
    statuses are permanent failures. The target is checked for SSRF before each attempt; a
    plain-http target is called on the very address that was checked (no second lookup).
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
        allow_private: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
            transport=transport,
            headers={"user-agent": f"duetime/{__version__}"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, claimed: Claimed) -> Outcome:
        delivery = claimed.delivery
        try:
            host, addresses = await check_target(delivery.target, allow_private=self._allow_private)
        except UnsafeTarget as exc:
            return Outcome(False, error=str(exc), permanent=True)
        url = httpx.URL(delivery.target)
        headers = {"content-type": "application/json"}
        if url.scheme == "http":  # pin the checked address; https relies on TLS names
            headers["host"] = url.netloc.decode("ascii")
            url = url.copy_with(host=str(addresses[0]))
        body = delivery.payload.encode()
        timestamp = int(time.time())
        headers.update(
            {
                "idempotency-key": delivery.id,
                "duetime-event-id": delivery.event_id,
                "duetime-attempt": str(claimed.attempt),
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: signature(claimed.secret, timestamp, body),
            }
        )
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome(False, error=f"no answer from {host} in time")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"cannot reach {host}: {type(exc).__name__}: {exc}")
        status = response.status_code
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
            retry_after=_retry_after(response.headers.get("retry-after")),
        )


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)
