"""Delivery to an external app, exactly as a Dapr sidecar does it."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx

from duetime.jobs.model import Trigger
from duetime.timefmt import format_rfc3339


class AppDeliveryError(Exception):
    """The app answered with a failure status or could not be reached."""


class HttpAppChannel:
    """A trigger handler that POSTs `{app_url}/job/{name}` with the job's raw data as the
    JSON body (empty body without data) and `dapr-api-token` when a token is set.

    2xx and 404 are success (Dapr's rule: a 404 means "not mine" and is not retried);
    anything else, a timeout or a connection error raises `AppDeliveryError`, which the
    engine counts against the job's failure policy. Besides Dapr's request, duetime adds
    `duetime-scheduled-time`, `duetime-attempt` and `duetime-late` headers.
    """

    def __init__(
        self,
        app_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 100,
    ) -> None:
        headers = {"content-type": "application/json"}
        if token:
            headers["dapr-api-token"] = token
        self._client = httpx.AsyncClient(
            base_url=app_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def __call__(self, trigger: Trigger) -> None:
        body = (
            b""
            if trigger.data is None
            else json.dumps(trigger.data, separators=(",", ":")).encode()
        )
        headers = {
            "duetime-scheduled-time": format_rfc3339(trigger.scheduled_at),
            "duetime-attempt": str(trigger.attempt),
            "duetime-late": "true" if trigger.late else "false",
        }
        try:
            response = await self._client.post(
                f"/job/{quote(trigger.name, safe='')}", content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise AppDeliveryError(f"app unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404 or response.is_success:
            return
        raise AppDeliveryError(f"app answered {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        await self._client.aclose()
