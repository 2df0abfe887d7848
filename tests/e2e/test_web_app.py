"""The web app in real headless Chromium (Debian's, driven by Playwright) against a real
duetime server: accounts, the task list, live reminders, time zones, isolation."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server
from tests.e2e.web import (
    PASSWORD,
    CuttableProxy,
    Watched,
    browser,
    call,
    fresh_email,
    list_version,
    new_context,
    playwright,
    shot,
    sign_in,
    sign_up,
    wait_attr,
    wait_list,
    wait_live,
    wait_reloaded,
    wait_until,
    wall,
    web_server,
)

__all__ = ["browser", "playwright", "web_server"]  # the module-scoped fixtures

ZONE = "Europe/Paris"

NOTICE_TIMES = """
window.__notices = [];
new MutationObserver((changes) => {
  for (const change of changes) for (const node of change.addedNodes) {
    if (node.classList && node.classList.contains('notice')) {
      window.__notices.push({ id: node.dataset.notification, at: Date.now(),
                              title: node.querySelector('h2').textContent });
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def notices(page: Page) -> list[dict[str, object]]:
    found: list[dict[str, object]] = page.evaluate("window.__notices || []")
    return found


def quick_add(page: Page, title: str, due: datetime | None = None) -> None:
    before = list_version(page)
    page.fill("#qa-title", title)
    if due is not None:
        local = wall(due, ZONE)
        page.fill("#qa-date", local.strftime("%Y-%m-%d"))
        page.fill("#qa-time", local.strftime("%H:%M:%S"))
    page.click("#quick-add button[type=submit]")
    wait_reloaded(page, before)


def test_sign_up_sign_out_and_a_new_session_at_sign_in(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    page.goto("/")
    expect(page).to_have_url(f"{web_server.url}/signin")
    email = sign_up(page)
    expect(page.locator("h1")).to_have_text("Tasks")
    first = {c["name"]: c for c in context.cookies()}["duetime_session"]
    assert first["httpOnly"] and first["sameSite"] == "Lax"

    page.click("#signout")
    page.wait_for_url("**/signin")
    page.goto("/app")
    page.wait_for_url("**/signin?next=%2Fapp")
    # session fixation: a session id planted before sign-in is never the one used after
    context.add_cookies([{"name": "duetime_session", "value": "planted", "url": web_server.url}])
    sign_in(page, email)
    after = {c["name"]: c for c in context.cookies()}["duetime_session"]["value"]
    assert after not in ("planted", first["value"])
    wait_list(page)
    watched.check()
    context.close()


def test_a_wrong_password_reads_like_an_unknown_email(browser: Browser, web_server: Server) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    email = sign_up(page)
    page.click("#signout")
    page.wait_for_url("**/signin")
    messages = []
    for who, password in ((email, "not the password at all"), (fresh_email("nobody"), PASSWORD)):
        page.fill("#email", who)
        page.fill("#password", password)
        page.click("#signin-form button[type=submit]")
        error = page.locator("#signin-form [role=alert]")
        expect(error).not_to_be_empty()
        messages.append(error.text_content())
        page.reload()
    assert messages[0] == messages[1]
    assert email not in (messages[0] or "")
    watched.check()
    context.close()


def test_the_reminder_notice_comes_at_the_due_time_and_again_after_a_snooze(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    context.add_init_script(NOTICE_TIMES)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    wait_live(page)
    due = datetime.now().astimezone().replace(microsecond=0) + timedelta(seconds=6)
    quick_add(page, "Call the dentist", due)
    row = page.locator(".task", has_text="Call the dentist")
    expect(row.locator("time")).to_contain_text(wall(due, ZONE).strftime("%H:%M"))

    notice = page.locator(".notice", has_text="Call the dentist")
    expect(notice).to_be_visible(timeout=20_000)
    first = notices(page)[0]
    seen = float(first["at"]) / 1000  # type: ignore[arg-type]
    assert seen >= due.timestamp(), f"the notice came {due.timestamp() - seen:.3f} s early"
    assert seen - due.timestamp() < 2.0, f"the notice came {seen - due.timestamp():.3f} s late"
    assert page.locator("#notices").get_attribute("aria-live") == "assertive"
    shot(page, "reminder-notice")

    # snooze for 3 s with the custom time: it comes again, not before
    notice.get_by_role("button", name="Custom…").click()
    until = datetime.now().astimezone().replace(microsecond=0) + timedelta(seconds=4)
    notice.locator("input[type=datetime-local]").fill(
        wall(until, ZONE).strftime("%Y-%m-%dT%H:%M:%S")
    )
    notice.get_by_role("button", name="Snooze", exact=True).click()
    expect(notice).to_have_count(0)
    wait_until(page, "() => window.__notices.length >= 2", timeout=20)
    again = notices(page)[1]
    assert again["title"] == "Call the dentist"
    seen_again = float(again["at"]) / 1000  # type: ignore[arg-type]
    assert seen_again >= until.timestamp()
    assert seen_again - until.timestamp() < 2.0

    # done from the notice completes the task
    page.locator(".notice").get_by_role("button", name="Done").click()
    expect(page.locator(".notice")).to_have_count(0)
    page.get_by_role("button", name="Done", exact=True).click()  # the Done view
    expect(page.locator(".task", has_text="Call the dentist")).to_have_count(1)
    watched.check()
    context.close()


def test_completing_a_recurring_task_shows_the_next_occurrence(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    tomorrow = (datetime.now().astimezone() + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    quick_add(page, "Water the plants", tomorrow)
    page.get_by_role("button", name="Edit Water the plants").click()
    page.select_option("#ed-repeat", "daily")
    page.click("#add-reminder")
    page.locator("#reminders .reminder").last.locator("input[type=number]").fill("15")
    before = list_version(page)
    page.click("#edit-form button[type=submit]")
    wait_reloaded(page, before)

    page.get_by_role("button", name="Edit Water the plants").click()
    preview = page.locator("#preview li")
    expect(preview).to_have_count(5)
    assert page.locator("#ed-repeat").input_value() == "daily"
    expect(page.locator("#reminders .reminder")).to_have_count(2)
    shot(page, "edit-task")
    page.click("#ed-cancel")

    before = list_version(page)
    page.locator(".task", has_text="Water the plants").locator("input[type=checkbox]").check()
    wait_reloaded(page, before)
    row = page.locator(".task", has_text="Water the plants")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("#2")
    next_day = wall(tomorrow + timedelta(days=1), ZONE)
    expect(row.locator("time")).to_contain_text(f"{next_day.day} {next_day.strftime('%b')}")
    watched.check()
    context.close()


def test_a_new_time_zone_moves_the_due_times(browser: Browser, web_server: Server) -> None:
    context = new_context(browser, web_server, timezone_id="UTC")
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    page.goto("/settings")
    wait_attr(page, "settings-ready", "1")
    expect(page.locator("#zone-detected")).to_contain_text("UTC")
    page.click("#detect")
    assert page.locator("#timezone").input_value() == "UTC"
    page.click("#zone-form button[type=submit]")
    expect(page.locator("#toast")).to_contain_text("saved")

    page.goto("/app")
    wait_list(page)
    due = (datetime.now().astimezone() + timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    call(page, "POST", "/api/tasks", {"title": "Standup", "due_at": due.isoformat()})
    page.reload()
    wait_list(page)
    time_el = page.locator(".task", has_text="Standup").locator("time")
    utc_text = wall(due, "UTC").strftime("%H:%M")
    expect(time_el).to_contain_text(utc_text)

    page.goto("/settings")
    wait_attr(page, "settings-ready", "1")
    page.fill("#timezone", "Asia/Tokyo")
    page.click("#zone-form button[type=submit]")
    expect(page.locator("#toast")).to_contain_text("saved")
    shot(page, "settings", full_page=True)
    page.goto("/app")
    wait_list(page)
    tokyo = wall(due, "Asia/Tokyo").strftime("%H:%M")
    expect(page.locator("#zone-name")).to_have_text("Asia/Tokyo")
    expect(time_el).to_contain_text(tokyo)
    assert tokyo != utc_text
    watched.check()
    context.close()


def test_a_second_user_sees_none_of_the_first_ones_tasks(
    browser: Browser, web_server: Server
) -> None:
    first = new_context(browser, web_server)
    page = first.new_page()
    sign_up(page)
    for n in range(3):
        quick_add(page, f"Private task {n}")
    task_id = page.locator(".task").first.get_attribute("data-task")

    second = new_context(browser, web_server)
    other = second.new_page()
    watched = Watched(other)
    sign_up(other)
    expect(other.locator(".task")).to_have_count(0)
    expect(other.locator("#task-list")).to_contain_text("No tasks yet")
    other.fill("#search", "Private")
    other.wait_for_timeout(500)
    expect(other.locator(".task")).to_have_count(0)
    status = other.evaluate("async (id) => (await fetch('/api/tasks/' + id)).status", task_id)
    assert status == 404
    watched.check()
    first.close()
    second.close()


def test_list_views_search_tags_and_delete_with_undo(browser: Browser, web_server: Server) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    now = datetime.now().astimezone()
    call(
        page,
        "POST",
        "/api/tasks",
        {"title": "Late bill", "due_at": (now - timedelta(hours=2)).isoformat()},
    )
    call(
        page,
        "POST",
        "/api/tasks",
        {"title": "Next week", "due_at": (now + timedelta(days=7)).isoformat(), "tags": ["work"]},
    )
    quick_add(page, "Buy milk #home")
    expect(page.locator(".task")).to_have_count(3)
    expect(page.locator(".task", has_text="Buy milk")).to_contain_text("#home")

    page.get_by_role("button", name="Overdue").click()
    expect(page.locator(".task")).to_have_count(1)
    expect(page.locator(".task")).to_contain_text("Late bill")
    page.get_by_role("button", name="Upcoming").click()
    expect(page.locator(".task")).to_have_count(1)
    expect(page.locator(".task")).to_contain_text("Next week")
    page.get_by_role("button", name="All open").click()
    expect(page.locator(".task")).to_have_count(3)
    page.fill("#tag-filter", "work")
    expect(page.locator(".task")).to_have_count(1)
    page.fill("#tag-filter", "")
    page.fill("#search", "milk")
    expect(page.locator(".task")).to_have_count(1)
    page.fill("#search", "")
    expect(page.locator(".task")).to_have_count(3)

    # delete, undo: still there; delete again and let the undo window pass: gone
    page.get_by_role("button", name="Delete Buy milk").click()
    expect(page.locator(".task", has_text="Buy milk")).to_be_hidden()
    page.locator("#toast").get_by_role("button", name="Undo").click()
    expect(page.locator(".task", has_text="Buy milk")).to_be_visible()
    page.wait_for_timeout(5500)
    assert any(t["title"] == "Buy milk" for t in call(page, "GET", "/api/tasks")["tasks"])
    page.get_by_role("button", name="Delete Buy milk").click()
    page.wait_for_timeout(6000)
    titles = [t["title"] for t in call(page, "GET", "/api/tasks")["tasks"]]
    assert "Buy milk" not in titles and len(titles) == 2
    shot(page, "task-list")
    watched.check()
    context.close()


def test_inbox_read_and_unread(browser: Browser, web_server: Server) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    wait_live(page)
    due = datetime.now().astimezone() + timedelta(seconds=2)
    for title in ("Stretch", "Drink water"):
        call(page, "POST", "/api/tasks", {"title": title, "due_at": due.isoformat()})
    expect(page.locator(".notice")).to_have_count(2, timeout=20_000)
    page.goto("/inbox")
    expect(page.locator("#inbox .task")).to_have_count(2)
    expect(page.locator("#unread-count")).to_have_text("2")
    page.get_by_role("button", name="Mark Stretch read").click()
    expect(page.locator("#inbox .read")).to_have_count(1)
    page.get_by_role("button", name="Unread").click()
    expect(page.locator("#inbox .task")).to_have_count(1)
    expect(page.locator("#inbox .task")).to_contain_text("Drink water")
    page.get_by_role("button", name="All", exact=True).click()
    expect(page.locator("#inbox .task")).to_have_count(2)
    shot(page, "inbox")
    watched.check()
    context.close()


def _round_up(at: datetime) -> datetime:
    return datetime.fromtimestamp(math.ceil(at.timestamp()), at.tzinfo)


def test_a_reminder_that_fires_while_the_connection_is_lost_comes_after_it(
    browser: Browser, web_server: Server
) -> None:
    """EventSource reconnects with Last-Event-ID by itself; the stream sends what it missed."""
    proxy = CuttableProxy(web_server.port)
    context = browser.new_context(base_url=proxy.url, locale="en-GB", timezone_id=ZONE)
    context.add_init_script(NOTICE_TIMES)
    page = context.new_page()
    watched = Watched(page)
    try:
        sign_up(page)
        wait_live(page)
        due = _round_up(datetime.now().astimezone() + timedelta(seconds=3))
        call(page, "POST", "/api/tasks", {"title": "After the outage", "due_at": due.isoformat()})
        proxy.cut()
        time.sleep(max(0.0, due.timestamp() - time.time()) + 1.5)  # it fired meanwhile
        assert notices(page) == []
        assert page.evaluate("document.body.dataset.live") == "retrying"
        proxy.restore()
        expect(page.locator(".notice", has_text="After the outage")).to_be_visible(timeout=20_000)
        assert len(notices(page)) == 1
        watched.check()
    finally:
        context.close()
        proxy.close()
