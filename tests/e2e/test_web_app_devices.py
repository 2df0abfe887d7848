"""The web app beyond one page: its service worker and Web Push (to the push service
stand-in), the operator view, a phone's width, accessibility basics and first paint."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Receiver, Server
from tests.e2e.web import (
    PASSWORD,
    Watched,
    browser,
    call,
    fresh_email,
    new_context,
    playwright,
    server_env,
    shot,
    sign_in,
    sign_up,
    wait_attr,
    wait_list,
    wait_until,
    web_server,
)
from tests.push_service import PushServiceStandIn

__all__ = ["browser", "playwright", "web_server"]

SW_MESSAGES = """
window.__sw = [];
if (navigator.serviceWorker) {
  navigator.serviceWorker.addEventListener('message', (e) => window.__sw.push(e.data));
}
"""


def test_the_service_worker_registers_and_a_push_decrypts_to_the_reminder(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    context.grant_permissions(["notifications"], origin=web_server.url)
    context.add_init_script(SW_MESSAGES)
    page = context.new_page()
    watched = Watched(page)
    push = PushServiceStandIn()
    try:
        sign_up(page)
        page.goto("/settings")
        wait_attr(page, "settings-ready", "1")
        wait_attr(page, "service-worker", "registered")
        script = page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)")
        assert script == f"{web_server.url}/sw.js"
        page.reload()  # now the worker controls the page
        wait_attr(page, "settings-ready", "1")
        assert page.evaluate("navigator.serviceWorker.controller !== null")
        assert any(w.url.endswith("/sw.js") for w in context.service_workers)

        # Chromium's own push service cannot be reached from here: the button says so, or
        # subscribes; either way the page answers, and never with an error of its own
        page.click("#push-subscribe")
        expect(page.locator("#push-status")).not_to_have_text("Asking this browser…")

        # a subscription at the stand-in, registered by the page's own code
        key = call(page, "GET", "/api/push/key")["public_key"]
        device = push.device("chromium", application_server_key=key)
        page.evaluate(
            """async (json) => (await import('/static/settings.js'))
                .saveSubscription(json, 'Chromium on the test machine')""",
            device.to_json(),
        )
        expect(page.locator("#devices li")).to_contain_text("Chromium on the test machine")
        expect(page.locator("#push-enabled")).to_be_checked()

        due = datetime.now().astimezone() + timedelta(seconds=2)
        task = call(
            page, "POST", "/api/tasks", {"title": "Take the bins out", "due_at": due.isoformat()}
        )
        push.wait_for(lambda: len(push.of("chromium")) >= 1, timeout=30)
        got = push.of("chromium")[0]
        assert got.problems == [] and got.status == 201
        payload: dict[str, Any] = got.data
        assert payload["title"] == "Take the bins out"
        assert payload["task_id"] == task["id"]
        assert {a["action"] for a in payload["actions"]} == {"snooze", "done"}

        # the decrypted payload, delivered to the service worker as a push: it shows the
        # notification and tells the page, which shows the same notice once
        cdp = context.new_cdp_session(page)
        registrations: list[dict[str, Any]] = []
        cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda e: registrations.extend(e["registrations"]),
        )
        cdp.send("ServiceWorker.enable")
        wait_until(page, "() => true")
        deadline = time.monotonic() + 10
        while not registrations and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        registration = next(r for r in registrations if r["scopeURL"] == f"{web_server.url}/")
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": web_server.url,
                "registrationId": registration["registrationId"],
                "data": got.plaintext.decode() if got.plaintext else "",
            },
        )
        wait_until(page, "() => window.__sw.some((m) => m.type === 'push')", timeout=20)
        message = page.evaluate("window.__sw.find((m) => m.type === 'push')")
        assert message["data"]["notification_id"] == payload["notification_id"]
        expect(page.locator(".notice", has_text="Take the bins out")).to_have_count(1)
        watched.check()
    finally:
        context.close()
        push.close()


def _create_admin(server: Server, email: str) -> None:
    env = {**os.environ, **server._env}
    subprocess.run(
        [sys.executable, "-m", "duetime", "users", "create", email, "--admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_operator_view_is_for_admins_only(browser: Browser, web_server: Server) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    tomorrow = datetime.now().astimezone() + timedelta(days=1)
    call(page, "POST", "/api/tasks", {"title": "Job maker", "due_at": tomorrow.isoformat()})
    page.goto("/admin")
    expect(page.locator("#admin-denied")).to_be_visible()
    expect(page.locator("#admin-link")).to_be_hidden()
    status = page.evaluate("async () => (await fetch('/api/admin/jobs')).status")
    assert status == 403

    email = fresh_email("admin")
    _create_admin(web_server, email)
    admin = new_context(browser, web_server)
    page = admin.new_page()
    watched = Watched(page)
    sign_in(page, email)
    expect(page.locator("#admin-link")).to_be_visible()
    page.click("#admin-link")
    wait_attr(page, "admin-ready", "1")
    expect(page.locator("#jobs tr[data-job]").first).to_be_visible()
    assert page.locator("#jobs time").count() >= 1  # the next fire time
    expect(page.locator("#events tr").first).to_be_visible()
    expect(page.locator("#dead")).to_contain_text("No dead letters.")
    shot(page, "admin", full_page=True)
    watched.check()
    context.close()
    admin.close()


def _unlabelled(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((e) => e.offsetParent !== null && e.type !== 'hidden')
            .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                           && !(e.tagName === 'BUTTON' && e.textContent.trim()))
            .map((e) => e.outerHTML.slice(0, 120))"""
    )
    return found


def test_every_control_has_a_name_and_the_pages_fit_a_phone(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server, viewport={"width": 360, "height": 760})
    page = context.new_page()
    watched = Watched(page)
    page.goto("/signup")
    assert _unlabelled(page) == []
    sign_up(page)
    soon = datetime.now().astimezone() + timedelta(hours=3)
    for title in ("Pick up the kids", "Renew the passport before the summer holidays", "Gym"):
        call(
            page,
            "POST",
            "/api/tasks",
            {"title": title, "due_at": soon.isoformat(), "tags": ["life"]},
        )
    page.reload()
    wait_list(page)
    for path in ("/app", "/inbox", "/settings", "/deliveries", "/admin"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert _unlabelled(page) == [], path
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width} px wide"
        if path == "/app":
            shot(page, "phone", full_page=True)
    # the keyboard reaches the quick add first after the skip link and the navigation
    page.goto("/app")
    wait_list(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    watched.check()
    context.close()


def test_first_paint_of_the_task_list_with_a_thousand_tasks(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    start = datetime.now().astimezone() + timedelta(days=1)
    tasks = [
        {
            "title": f"Task {n:04d}",
            "due_at": (start + timedelta(minutes=7 * n)).isoformat(),
            "tags": [f"t{n % 10}"],
            "description": "notes " * (n % 5),
        }
        for n in range(1000)
    ]
    created = call(page, "POST", "/api/tasks/batch", {"tasks": tasks})
    assert len(created["tasks"]) == 1000
    marks = []
    for _ in range(5):
        page.goto("/app")
        wait_list(page)
        marks.append(
            page.evaluate(
                """() => ({
                    list: performance.getEntriesByName('duetime:task-list-painted')[0].startTime,
                    fcp: (performance.getEntriesByName('first-contentful-paint')[0]
                          || {}).startTime,
                    res: performance.getEntriesByType('resource').map(
                        (r) => [r.name.slice(-40), Math.round(r.startTime),
                                Math.round(r.responseEnd)]),
                    dom: performance.getEntriesByType('navigation')[0].domInteractive,
                })"""
            )
        )
    expect(page.locator(".task")).to_have_count(100)
    expect(page.locator("#more")).to_be_visible()
    page.click("#more")
    expect(page.locator(".task")).to_have_count(200)
    median = statistics.median(m["list"] for m in marks[1:])  # the first load warms the caches
    figures = {"task_list_painted_ms": [round(m["list"], 1) for m in marks], "median_ms": median}
    print("first paint of the task list:", json.dumps(figures), json.dumps(marks[-1]))
    assert median < 300 * 3, figures  # the budget is 300 ms; generous on a loaded CI machine
    watched.check()
    context.close()


def test_the_operator_replays_and_discards_job_dead_letters_in_the_page(
    browser: Browser, make_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    healthy: set[str] = set()
    receiver.respond = lambda name: 200 if name in healthy else 503
    server = make_server(**{**server_env(tmp_path / "ops"), "DUETIME_APP_URL": receiver.url})
    server.start(timeout=60)
    policy = {"constant": {"maxRetries": 0, "interval": "1s"}}
    with server.client() as api:
        for name in ("ops-replay", "ops-discard"):
            made = api.post(f"/v1.0/jobs/{name}", json={"dueTime": "0s", "failurePolicy": policy})
            assert made.status_code == 204, made.text
        deadline = time.monotonic() + 15
        while len(letters := api.get("/v1.0/deadletters").json()["deadLetters"]) < 2:
            assert time.monotonic() < deadline, letters
            time.sleep(0.2)
    by_name = {d["name"]: d["id"] for d in letters}
    assert len(receiver.of("ops-replay")) == 1  # tried once, no retries

    email = fresh_email("ops")
    _create_admin(server, email)
    context = new_context(browser, server)
    page = context.new_page()
    watched = Watched(page)
    sign_in(page, email)
    page.goto("/admin")
    wait_attr(page, "admin-ready", "1")
    rows = page.locator("#dead tr[data-dead]")
    expect(rows).to_have_count(2)
    replay_row = page.locator(f"#dead tr[data-dead='{by_name['ops-replay']}']")
    expect(replay_row).to_contain_text("503")

    # the app still fails: the replay says so, and the dead letter stays
    replay_row.locator("button", has_text="Replay").click()
    expect(page.locator("#toast")).to_contain_text("failed again")
    expect(rows).to_have_count(2)
    healthy.add("ops-replay")
    replay_row.locator("button", has_text="Replay").click()
    expect(page.locator("#toast")).to_contain_text("Replayed")
    expect(replay_row).to_have_count(0)
    receiver.wait_for(lambda: len(receiver.of("ops-replay")) == 3)

    page.locator(
        f"#dead tr[data-dead='{by_name['ops-discard']}'] button", has_text="Discard"
    ).click()
    expect(rows).to_have_count(0)
    expect(page.locator("#dead")).to_contain_text("No dead letters.")
    assert len(receiver.of("ops-discard")) == 1  # discarded, never sent again

    assert call(page, "GET", "/api/admin/dead-letters")["dead_letters"] == []
    with server.client() as api:
        assert api.get("/v1.0/deadletters").json()["deadLetters"] == []
    page.reload()
    wait_attr(page, "admin-ready", "1")
    expect(page.locator("#dead")).to_contain_text("No dead letters.")
    # the one 5xx is the replay the app failed again: a 502 by design (Bad Gateway), not a bug
    replay = f"/api/admin/dead-letters/{by_name['ops-replay']}/replay"
    assert [e for e in watched.server_errors if not e.startswith("502 ")] == []
    assert [e.split(" ", 1)[1].removeprefix(server.url) for e in watched.server_errors] == [replay]
    watched.server_errors.clear()
    watched.check()
    context.close()
