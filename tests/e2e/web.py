"""What the web app's browser tests share: one duetime server per module, Debian's
chromium driven by Playwright, and helpers to sign up and call the API as the page does."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.conftest import Server

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"
TIMEOUT_MS = 20_000
_emails = itertools.count(1)


def server_env(data_dir: Path) -> dict[str, str]:
    return {
        "DUETIME_DATA_DIR": str(data_dir),
        "DUETIME_LOG_LEVEL": "info",
        "DUETIME_SIGNUP": "open",
        "DUETIME_SIGNIN_MAX_FAILURES_PER_IP": "1000",
        # the push service stand-in listens on plain http on 127.0.0.1
        "DUETIME_WEBHOOK_ALLOW_PRIVATE": "true",
    }


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("web")
    server = Server(server_env(base / "data"), base / "server.log").start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    found = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--headless=new",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    yield found
    found.close()


class Watched:
    """A page with the answers and errors it saw: no test may see a 5xx or a script error."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.server_errors: list[str] = []
        self.page_errors: list[str] = []
        page.on(
            "response",
            lambda r: self.server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
        )
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.set_default_timeout(TIMEOUT_MS)

    def check(self) -> None:
        assert not self.server_errors, self.server_errors
        assert not self.page_errors, self.page_errors


def new_context(browser: Browser, server: Server, **options: Any) -> BrowserContext:
    options.setdefault("locale", "en-GB")
    options.setdefault("timezone_id", "Europe/Paris")
    context = browser.new_context(base_url=server.url, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def fresh_email(tag: str = "user") -> str:
    return f"{tag}-{os.getpid()}-{next(_emails)}@example.com"


def sign_up(page: Page, email: str | None = None, password: str = PASSWORD) -> str:
    email = email or fresh_email()
    page.goto("/signup")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#signup-form button[type=submit]")
    page.wait_for_url("**/app")
    wait_list(page)
    return email


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/signin")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#signin-form button[type=submit]")
    page.wait_for_url("**/app")


def wait_attr(page: Page, name: str, value: str) -> None:
    """Until `<body data-NAME="VALUE">` (a selector: wait_for_function would eval a string,
    which the app's Content-Security-Policy refuses)."""
    page.locator(f"body[data-{name}='{value}']").wait_for(state="attached")


def wait_until(page: Page, script: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    """Poll `script` (a function evaluated in the page) until it returns true."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true in {timeout} s: {script}")
        time.sleep(0.05)


def wait_list(page: Page) -> None:
    wait_attr(page, "list-painted", "1")


def wait_live(page: Page) -> None:
    wait_attr(page, "live", "open")


def call(page: Page, method: str, path: str, body: Any = None) -> Any:
    """The JSON API as the page calls it (session cookie + X-CSRF-Token)."""
    return page.evaluate(
        """async ([method, path, body]) => {
            const { api } = await import('/static/common.js');
            return await api(method, path, body === null ? undefined : body);
        }""",
        [method, path, body],
    )


def wall(at: datetime, zone: str) -> datetime:
    return at.astimezone(ZoneInfo(zone))


def list_version(page: Page) -> int:
    return int(page.evaluate("Number(document.body.dataset.listVersion || 0)"))


def wait_reloaded(page: Page, before: int) -> None:
    wait_until(page, f"() => Number(document.body.dataset.listVersion || 0) > {before}")


def shot(page: Page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def later(seconds: float) -> datetime:
    return datetime.now().astimezone() + timedelta(seconds=seconds)


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of `target_port` whose connections can be cut (and
    new ones refused) while the server behind it stays up: a lost network, not a restart."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.down = True
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self.cut()
        self._listener.close()
