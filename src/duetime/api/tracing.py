"""The server span of every HTTP request (when tracing is on)."""

from __future__ import annotations

from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duetime.tracing import Tracing, from_headers, set_error

_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: noise
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpTracing:
    """A `SERVER` span per request, named `{method} {route template}` (`POST
    /api/tasks/{task_id}`; the method alone when no route matched), a child of the caller's
    `traceparent` when it sends one. Attributes: `http.request.method`, `http.route`,
    `http.response.status_code`, `url.scheme`; never the path, the query or a header, which
    can hold ids and tokens. A 5xx answer is an error."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self._tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED:
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
        traceparent = tracestate = None
        for key, value in scope["headers"]:
            if key == b"traceparent":
                traceparent = value.decode("latin-1")
            elif key == b"tracestate":
                tracestate = value.decode("latin-1")
        attributes = {"http.request.method": method, "url.scheme": scope.get("scheme", "http")}
        with self._tracing.span(
            method,
            attributes,
            kind=SpanKind.SERVER,
            parent=from_headers(traceparent, tracestate),
        ) as span:
            status = 500

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                path = getattr(scope.get("route"), "path", None)
                if isinstance(path, str):
                    span.update_name(f"{method} {path}")
                    span.set_attribute("http.route", path)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    set_error(span, f"HTTP {status}")
