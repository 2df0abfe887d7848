"""`GET /metrics` in the Prometheus text format, and the HTTP metrics of every request."""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duetime import metrics
from duetime.settings import Settings, is_loopback


def metrics_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/metrics", include_in_schema=True)
    async def scrape(request: Request) -> Response:
        """Prometheus metrics of this process (text format). With `DUETIME_METRICS_TOKEN`
        set it needs `Authorization: Bearer <token>`; without it only a loopback `host`
        serves them (else 403)."""
        if settings.metrics_token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {settings.metrics_token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return JSONResponse(
                    {"detail": "metrics need Authorization: Bearer <DUETIME_METRICS_TOKEN>"},
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
        elif not is_loopback(settings.host):
            return JSONResponse(
                {
                    "detail": "metrics are served on a non-loopback host only with "
                    "DUETIME_METRICS_TOKEN, or on DUETIME_METRICS_PORT"
                },
                status_code=403,
            )
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class HttpMetrics:
    """Counts each request by method, route template and status, and times it. A path no
    route matches is `route="unmatched"`, so the labels stay bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _template(scope.get("route"))
            method = scope["method"] if scope["method"] in _METHODS else "other"
            metrics.http_requests.labels(method, route, str(status)).inc()
            metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _template(route: Any) -> str:
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
