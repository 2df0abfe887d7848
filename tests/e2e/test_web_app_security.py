"""The web app's defences in a real browser: CSRF, XSS, headers, and bad input on every
form answered next to its field, never with a 500."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server
from tests.e2e.web import (
    Watched,
    browser,
    call,
    new_context,
    playwright,
    sign_up,
    wait_attr,
    web_server,
)

__all__ = ["browser", "playwright", "web_server"]


class EvilSite:
    """Another origin on 127.0.0.1 whose page posts a form to duetime as soon as it loads."""

    def __init__(self, target: str) -> None:
        # text/plain makes the body valid JSON for the task API: only CSRF checks stop it
        form = (
            f'<form method="post" action="{html.escape(target)}/api/tasks" enctype="text/plain">'
            '<input name=\'{"title":"evil","description":"\' value=\'"}\'></form>'
            "<script>document.forms[0].submit()</script>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(form)))
                self.end_headers()
                self.wfile.write(form)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def evil(web_server: Server) -> Iterator[EvilSite]:
    site = EvilSite(web_server.url)
    yield site
    site.close()


def test_a_cross_site_form_post_is_refused(
    browser: Browser, web_server: Server, evil: EvilSite
) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    sign_up(page)
    attack = context.new_page()
    with attack.expect_response(lambda r: r.url.endswith("/api/tasks")) as answer:
        attack.goto(evil.url)
    assert answer.value.status == 403, answer.value.text()
    # the same request from duetime's own page but without the CSRF token: refused too
    status = page.evaluate(
        """async () => (await fetch('/api/tasks', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({title: 'no token'})})).status"""
    )
    assert status == 403
    assert call(page, "GET", "/api/tasks")["tasks"] == []
    context.close()


def test_pages_send_a_strict_content_security_policy(web_server: Server) -> None:
    for path in ("/signin", "/signup", "/app", "/settings", "/inbox", "/admin", "/sw.js"):
        r = httpx.get(web_server.url + path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        if path != "/sw.js":
            assert "<script>" not in r.text  # no inline script: modules from /static only
    sw = httpx.get(web_server.url + "/sw.js")
    assert sw.headers["service-worker-allowed"] == "/"
    assert sw.headers["content-type"].startswith("text/javascript")
    assert httpx.get(web_server.url + "/static/nothing.js").status_code == 404
    assert httpx.get(web_server.url + "/static/..%2Fpages.py").status_code == 404


def test_a_script_in_a_title_is_shown_as_text_and_never_runs(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    title = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    page.fill("#qa-title", title)
    page.click("#quick-add button[type=submit]")
    row = page.locator(".task").first
    expect(row.locator(".title")).to_have_text(title)
    due = datetime.now().astimezone() + timedelta(seconds=2)
    call(page, "POST", "/api/tasks", {"title": title, "due_at": due.isoformat()})
    notice = page.locator(".notice")
    expect(notice.locator("h2")).to_have_text(title, timeout=20_000)
    page.goto("/inbox")
    expect(page.locator("#inbox .title").first).to_have_text(title)
    page.goto("/app")
    page.get_by_role("button", name=f"Edit {title}").first.click()
    expect(page.locator("#ed-title")).to_have_value(title)
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, #notices img").count() == 0
    assert page.locator("main script").count() == 0
    watched.check()
    context.close()


def _error(page: Page, selector: str) -> str:
    slot = page.locator(selector)
    expect(slot).not_to_be_empty()
    return slot.text_content() or ""


def test_bad_input_on_every_form_shows_a_message_next_to_the_field(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)

    page.goto("/signup")
    page.fill("#email", "not-an-email")
    page.fill("#password", "long enough password")
    page.click("#signup-form button[type=submit]")
    assert "email" in _error(page, "#email-error").lower()
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    page.fill("#email", "shorty@example.com")
    page.fill("#password", "short")
    page.click("#signup-form button[type=submit]")
    _error(page, "#password-error")
    expect(page.locator("#email-error")).to_be_empty()

    page.goto("/signin")
    page.click("#signin-form button[type=submit]")
    _error(page, "#email-error")
    _error(page, "#password-error")

    sign_up(page)
    page.click("#quick-add button[type=submit]")
    _error(page, "#qa-title-error")

    page.fill("#qa-title", "Edit me")
    page.click("#quick-add button[type=submit]")
    page.get_by_role("button", name="Edit Edit me").click()
    page.fill("#ed-title", "   ")
    page.fill("#ed-zone", "Mars/Olympus_Mons")
    page.click("#add-reminder")
    page.locator("#reminders input[type=number]").first.fill("-5")
    page.click("#edit-form button[type=submit]")
    _error(page, "#ed-title-error")
    _error(page, "#ed-zone-error")
    _error(page, "#reminders [data-error-for='reminders.0']")
    page.fill("#ed-title", "Edit me")
    page.fill("#ed-zone", "")
    page.locator("#reminders input[type=number]").first.fill("5")
    page.fill("#ed-date", "2030-01-01")
    page.select_option("#ed-repeat", "custom")
    page.fill("#ed-rrule", "FREQ=SOMETIMES")
    page.click("#edit-form button[type=submit]")
    assert "recurrence" in _error(page, "#ed-rrule-error").lower()  # the server's own words
    page.click("#ed-cancel")

    page.goto("/settings")
    wait_attr(page, "settings-ready", "1")
    page.fill("#timezone", "Nowhere/Land")
    page.fill("#quiet-start", "22:00")
    page.click("#zone-form button[type=submit]")
    _error(page, "#timezone-error")
    _error(page, "#quiet-error")

    page.check("#webhook-enabled")
    page.fill("#webhook-url", "ftp://example.com/hook")
    page.fill("#email-address", "nope")
    page.click("#channels-form button[type=submit]")
    assert "webhook" in _error(page, "#webhook-error").lower()
    page.uncheck("#webhook-enabled")
    page.fill("#webhook-url", "")
    page.click("#channels-form button[type=submit]")
    assert "email" in _error(page, "#email-error").lower()

    page.click("#password-form button[type=submit]")
    _error(page, "#current-password-error")
    _error(page, "#new-password-error")
    page.fill("#current-password", "wrong wrong wrong")
    page.fill("#new-password", "short")
    page.click("#password-form button[type=submit]")
    _error(page, "#password-form [data-error-for]:not(:empty)")
    watched.check()
    context.close()
