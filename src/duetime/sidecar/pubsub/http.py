"""A small keep-alive HTTP/1.1 POST client for deliveries to apps, that returns the answer's
status and (up to 64 KiB of) body, which the status contract needs.

httpx costs about 2 ms of CPU per request on a 2-core machine (docs/benchmarks.md), which
capped deliveries near 300/s; this client, on httptools, is a small fraction of that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools

MAX_ANSWER_BYTES = 64 * 1024


class HttpError(Exception):
    """No answer: connection refused or reset, timeout, malformed answer."""


class _Answer:
    def __init__(self) -> None:
        self.body = bytearray()
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_body(self, body: bytes) -> None:
        if len(self.body) < MAX_ANSWER_BYTES:
            self.body += body[: MAX_ANSWER_BYTES - len(self.body)]

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.keep_alive = bool(self.parser.should_keep_alive())

    def on_message_complete(self) -> None:
        self.done = True


class AppClient:
    """POSTs to one app at `base_url` (`http://host:port[/prefix]`), up to `max_connections`
    at once, each request bounded by `timeout` seconds."""

    def __init__(self, base_url: str, *, timeout: float, max_connections: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// app URL: {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._netloc = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        lines = [
            f"POST {self._prefix}{path} HTTP/1.1",
            f"host: {self._netloc}",
            "user-agent: duetime",
            f"content-length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        if any("\r" in line or "\n" in line for line in lines):
            raise HttpError("header values must not contain line breaks")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self._slots:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._send(request)
            except TimeoutError:
                raise HttpError(f"no answer within {self._timeout:g} s") from None

    async def _send(self, request: bytes) -> tuple[int, bytes]:
        while self._idle:
            conn = self._idle.pop()
            if conn[0].at_eof() or conn[1].is_closing():
                conn[1].close()
                continue
            try:
                return await self._exchange(conn, request)
            except ConnectionError:
                break  # a stale keep-alive connection: once more on a new one
        try:
            conn = await asyncio.open_connection(self._host, self._port)
        except OSError as exc:
            raise HttpError(f"cannot connect: {exc}") from None
        try:
            return await self._exchange(conn, request)
        except OSError as exc:
            raise HttpError(f"connection failed: {exc}") from None

    async def _exchange(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> tuple[int, bytes]:
        reader, writer = conn
        try:
            writer.write(request)
            answer = _Answer()
            parser = httptools.HttpResponseParser(answer)
            answer.parser = parser
            received = False
            while not answer.done:
                data = await reader.read(65536)
                if not data:
                    if not received:
                        raise ConnectionError("closed before answering")
                    raise HttpError("the app closed the connection mid-answer")
                received = True
                try:
                    parser.feed_data(data)
                except httptools.HttpParserError as exc:
                    raise HttpError(f"malformed HTTP answer: {exc}") from None
        except BaseException:
            writer.close()
            raise
        if answer.keep_alive:
            self._idle.append(conn)
        else:
            writer.close()
        return parser.get_status_code(), bytes(answer.body)

    async def aclose(self) -> None:
        for _, writer in self._idle:
            with contextlib.suppress(Exception):
                writer.close()
        self._idle.clear()
