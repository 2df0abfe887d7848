"""A real duetime server process and a real HTTP app that receives its triggers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port


@dataclass
class Received:
    name: str
    body: bytes
    headers: dict[str, str]
    at: float = field(default_factory=time.time)

    @property
    def data(self) -> Any:
        return json.loads(self.body) if self.body else None


class Receiver:
    """An HTTP app on 127.0.0.1 that records `POST /job/{name}` requests.

    `respond(name) -> int` picks each answer's status; `hold(name)` makes it never answer
    requests for that job (to crash duetime mid-delivery)."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.respond: Callable[[str], int] = lambda name: 200
        self.held: set[str] = set()
        self.hold_first = 0  # never answer the first n requests, whatever the path
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                name = self.path.removeprefix("/job/")
                with receiver._cond:
                    receiver.requests.append(
                        Received(name, body, {k.lower(): v for k, v in self.headers.items()})
                    )
                    first = len(receiver.requests) <= receiver.hold_first
                    receiver._cond.notify_all()
                if name in receiver.held or first:
                    time.sleep(30)
                    return
                self.send_response(receiver.respond(name))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def of(self, name: str) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.name == name]

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        with self._cond:
            if not self._cond.wait_for(check, timeout):
                raise AssertionError(f"receiver: condition not met in {timeout}s")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Server:
    """`duetime serve` (or another command: `worker`) in a child process."""

    def __init__(
        self, env: dict[str, str], log: Path, command: str = "serve", port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env, "DUETIME_PORT": str(self.port)}
        # the Dapr gRPC API: a free port of its own unless the test gives one (0: off)
        self._own_grpc_port = "DUETIME_GRPC_PORT" not in env
        if self._own_grpc_port:
            self._env["DUETIME_GRPC_PORT"] = str(free_port())
        self.grpc_port = int(self._env["DUETIME_GRPC_PORT"])
        self._log = log
        self._command = command
        self._own_port = port is None
        self._started = False
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Server:
        """Start and wait until ready. A port picked by `free_port` that another process took
        before the bind is picked again (first start only: a restart keeps its URL)."""
        for _ in range(3):
            offset = self._log.stat().st_size if self._log.exists() else 0
            try:
                self._start(timeout)
                self._started = True
                return self
            except RuntimeError:
                failure = self._log.read_text()[offset:]
                taken = "address already in use" in failure
                if not (taken and self._own_port and not self._started):
                    raise
                if "DUETIME_GRPC_PORT" in failure and not self._own_grpc_port:
                    raise  # the test's own gRPC port is taken: picking again won't help
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
                self._env["DUETIME_PORT"] = str(self.port)
                if self._own_grpc_port:
                    self.grpc_port = free_port()
                    self._env["DUETIME_GRPC_PORT"] = str(self.grpc_port)
        raise RuntimeError(f"no free port for duetime: {self._log.read_text()[-3000:]}")

    def _start(self, timeout: float) -> None:
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "duetime", self._command],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"duetime exited: {self._log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"duetime not ready in {timeout}s: {self._log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown, no flushing."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"dapr-api-token": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(**env: str) -> Server:
        base = {"DUETIME_DATA_DIR": str(tmp_path / "data"), "DUETIME_LOG_LEVEL": "info"}
        server = Server({**base, **env}, tmp_path / "server.log")
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
