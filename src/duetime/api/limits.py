"""Request guards applied before routing: a body size cap, a NUL-character check, and one
rule for what a body is."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duetime.api.errors import MALFORMED_REQUEST, error_body


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses bodies over `max_bytes` on paths under `prefix`, by Content-Length when sent
    and by counting what arrives otherwise."""

    def __init__(self, app: ASGIApp, *, prefix: str, max_bytes: int) -> None:
        self.app = app
        self.prefix = prefix
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RejectNul:
    """400 for a NUL character in the path or query: no database stores it in text, and it
    is never meaningful in a name, id or filter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope["query_string"].lower()
        ):
            message = "NUL characters are not allowed in the path or query"
            if scope["path"].startswith("/api/"):
                payload: dict[str, object] = {"detail": message}
            else:
                payload = error_body(MALFORMED_REQUEST, message)
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
            return
        await self.app(scope, receive, send)


class JsonBodies:
    """Every request body duetime reads is JSON, whatever its Content-Type says: the rule
    daprd applies to the Jobs and pub/sub APIs, kept for the task API too, so
    `curl -d '{...}'` (sent as a form) works on both and a body that is not JSON is told so.

    FastAPI only decodes bodies labelled JSON; this relabels the others under `prefix`
    before routing. Bodies the Dapr routes read raw are left as they are."""

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            # in place, not a copy: the middlewares outside read the route the router puts
            # into this scope (metrics and traces by route template)
            scope["headers"] = headers
        await self.app(scope, receive, send)
