"""A real Dapr-style subscriber app for the pub/sub tests and benchmark: an HTTP server on
127.0.0.1 that answers `GET /dapr/subscribe` with its subscriptions and records every POST.

In-process (a thread): `Subscriber(subscriptions)`; `answer(path, body) -> (status, body)`
picks each answer (default 200 `{"status":"SUCCESS"}`). As a process of its own:
`python -m tests.subscriber PORT SUBSCRIPTIONS_JSON LOG_JSONL` appends one JSON line per
POST to LOG_JSONL (path, headers, body as text, time) and answers SUCCESS.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, bytes]
SUCCESS: Answer = (200, b'{"status":"SUCCESS"}')


@dataclass
class Got:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    @property
    def event(self) -> Any:
        return json.loads(self.body)


class Subscriber:
    def __init__(self, subscriptions: list[dict[str, Any]] | None, port: int = 0) -> None:
        self.subscriptions = subscriptions
        self.got: list[Got] = []
        self.subscribe_calls = 0
        self.answer: Callable[[str, bytes], Answer] = lambda path, body: SUCCESS
        self._cond = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body in two writes: no 40 ms stall

            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/dapr/subscribe":
                    with owner._cond:
                        owner.subscribe_calls += 1
                    if owner.subscriptions is None:
                        self._send(404, b"")
                    else:
                        self._send(200, json.dumps(owner.subscriptions).encode())
                else:
                    self._send(200, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                got = Got(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status, answer = owner.answer(self.path, body)
                with owner._cond:
                    owner.got.append(got)
                    owner._cond.notify_all()
                self._send(status, answer)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def on(self, path: str) -> list[Got]:
        with self._cond:
            return [g for g in self.got if g.path == path]

    def wait(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        with self._cond:
            if not self._cond.wait_for(check, timeout):
                raise AssertionError(f"subscriber: condition not met in {timeout} s: {self.got!r}")

    def wait_count(self, path: str, n: int, timeout: float = 20.0) -> list[Got]:
        self.wait(lambda: len([g for g in self.got if g.path == path]) >= n, timeout)
        return self.on(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    port, subscriptions, log_path = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    sub = Subscriber(subscriptions, port)
    lock = threading.Lock()

    def record(path: str, body: bytes) -> Answer:
        with lock, open(log_path, "a") as out:
            line = {"path": path, "body": body.decode("utf-8", "replace"), "at": time.time()}
            out.write(json.dumps(line) + "\n")
        return SUCCESS

    sub.answer = record
    print(f"listening on {sub.port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
