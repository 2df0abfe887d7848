"""The edit dialog's repetition in real headless Chromium: the live preview of a rule not
saved yet (from POST /api/recurrence/preview), and "repeat after completion"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server
from tests.e2e.web import (
    Watched,
    browser,
    call,
    list_version,
    new_context,
    playwright,
    sign_up,
    wait_reloaded,
    web_server,
)

__all__ = ["browser", "playwright", "web_server"]

NEW_YORK = "America/New_York"
# 2026-03-02 is a Monday; New York moves its clocks on Sunday 2026-03-08: 09:00 stays 09:00
WEEKLY_ACROSS_DST = [
    "2026-03-09T09:00:00-04:00",
    "2026-03-16T09:00:00-04:00",
    "2026-03-23T09:00:00-04:00",
    "2026-03-30T09:00:00-04:00",
    "2026-04-06T09:00:00-04:00",
]


def raw(page: Page, method: str, path: str, body: Any) -> dict[str, Any]:
    """The API's status and JSON body, as the page would get them (no exception on 4xx)."""
    found: dict[str, Any] = page.evaluate(
        """async ([method, path, body]) => {
            const { session } = await import('/static/common.js');
            const s = await session();
            const r = await fetch(path, { method, body: JSON.stringify(body),
                headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrf_token } });
            return { status: r.status, body: await r.json() };
        }""",
        [method, path, body],
    )
    return found


def preview_dates(page: Page) -> list[str]:
    found: list[str] = page.locator("#preview time").evaluate_all(
        "(nodes) => nodes.map((n) => n.getAttribute('datetime'))"
    )
    return found


def wait_preview(page: Page) -> str:
    page.locator("body:not([data-preview='pending']):not([data-preview='none'])").wait_for(
        state="attached"
    )
    value: str = page.evaluate("document.body.dataset.preview")
    return value


def test_the_preview_of_an_unsaved_rule_follows_what_is_typed(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    page.fill("#qa-title", "Team call")
    page.click("#qa-more")
    expect(page.locator("#edit-dialog")).to_be_visible()
    expect(page.locator("#edit-title")).to_have_text("New task")
    assert page.locator("#ed-title").input_value() == "Team call"
    page.fill("#ed-date", "2026-03-02")
    page.fill("#ed-time", "09:00:00")
    page.fill("#ed-zone", NEW_YORK)
    expect(page.locator("#preview-box")).to_be_hidden()  # no rule yet
    page.select_option("#ed-repeat", "custom")
    page.locator("#ed-rrule").press_sequentially("FREQ=WEEKLY;BYDAY=MO", delay=20)
    wait_preview(page)
    expect(page.locator("#preview li")).to_have_count(5)
    shown = preview_dates(page)
    answer = call(
        page,
        "POST",
        "/api/recurrence/preview",
        {"recurrence": "FREQ=WEEKLY;BYDAY=MO", "due_at": "2026-03-02T09:00:00",
         "timezone": NEW_YORK, "count": 5},
    )  # fmt: skip
    assert shown == answer["due_at"] == WEEKLY_ACROSS_DST
    assert answer["first"] == "2026-03-02T09:00:00-05:00"
    assert answer["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    # shown in the task's zone: the wall time stays 09:00 across the change
    for text in page.locator("#preview li").all_inner_texts():
        assert "09:00" in text, text
    expect(page.locator("#preview-label")).to_contain_text(NEW_YORK)

    # typing on changes the preview; a rule that is not one shows why next to the field
    page.locator("#ed-rrule").press_sequentially(",WE", delay=20)
    wait_preview(page)
    expect(page.locator("#preview time").nth(0)).to_have_attribute(
        "datetime", "2026-03-04T09:00:00-05:00"
    )
    page.fill("#ed-rrule", "FREQ=SOMETIMES")
    assert wait_preview(page) == "error"
    expect(page.locator("#ed-rrule-error")).not_to_be_empty()
    expect(page.locator("#preview-box")).to_be_hidden()
    # a preset previews too, from the date and time as they change
    page.select_option("#ed-repeat", "daily")
    page.fill("#ed-time", "07:30:00")
    wait_preview(page)
    expect(page.locator("#ed-rrule-error")).to_be_empty()
    expect(page.locator("#preview time").nth(0)).to_have_attribute(
        "datetime", "2026-03-03T07:30:00-05:00"
    )

    # saved, the task's series has the rule and the occurrences the preview showed
    page.select_option("#ed-repeat", "custom")
    page.fill("#ed-rrule", "FREQ=WEEKLY;BYDAY=MO")
    page.fill("#ed-time", "09:00:00")
    wait_preview(page)
    assert preview_dates(page) == WEEKLY_ACROSS_DST
    before = list_version(page)
    page.click("#edit-form button[type=submit]")
    wait_reloaded(page, before)
    expect(page.locator("#edit-dialog")).to_be_hidden()
    tasks = call(page, "GET", "/api/tasks?q=Team%20call")["tasks"]
    assert len(tasks) == 1 and tasks[0]["timezone"] == NEW_YORK
    series = call(page, "GET", f"/api/series/{tasks[0]['series_id']}")
    assert series["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    saved = call(page, "GET", f"/api/tasks/{tasks[0]['id']}/occurrences?count=5")["due_at"]
    assert [datetime.fromisoformat(d) for d in saved] == [
        datetime.fromisoformat(d) for d in WEEKLY_ACROSS_DST
    ]
    watched.check()
    context.close()


def test_the_preview_route_names_the_field_of_bad_input(
    browser: Browser, web_server: Server
) -> None:
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    good = {"recurrence": "weekly", "due_at": "2026-03-02T09:00:00", "timezone": NEW_YORK}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "recurrence": "FREQ=SOMETIMES"}, "recurrence"),
        ({**good, "recurrence": "FREQ=MINUTELY"}, "recurrence"),  # more often than 15 min
        ({**good, "recurrence": "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2"}, "recurrence"),
        ({**good, "recurrence": ""}, "recurrence"),
        ({**good, "recurrence": 7}, "recurrence"),
        ({**good, "due_at": "tomorrow"}, "due_at"),
        ({**good, "due_at": "9999-12-31T23:59:59"}, "due_at"),
        ({**good, "due_at": "0001-01-01T00:00:00+14:00"}, "due_at"),
        ({**good, "timezone": "Mars/Olympus"}, "timezone"),
        ({**good, "count": 0}, "count"),
        ({**good, "count": 1000}, "count"),
        ({**good, "extra": 1}, "extra"),
        ({"due_at": good["due_at"]}, "recurrence"),
    ]
    for body, field in cases:
        found = raw(page, "POST", "/api/recurrence/preview", body)
        assert found["status"] == 422, (body, found)
        named = {e["loc"][-1] for e in found["body"]["errors"]}
        assert field in named, (body, found)
        assert found["body"]["detail"], found
    # a wall time that does not exist moves forward by the gap, as a saved series does
    gap = raw(
        page,
        "POST",
        "/api/recurrence/preview",
        {**good, "recurrence": "daily", "due_at": "2026-03-07T02:30:00", "count": 2},
    )
    assert gap["status"] == 200, gap
    assert gap["body"]["due_at"] == ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]
    # an instant is placed in the zone; without a zone, the user's (the browser's here)
    instant = raw(
        page,
        "POST",
        "/api/recurrence/preview",
        {"recurrence": "weekly", "due_at": "2026-03-23T08:00:00Z", "count": 1},
    )
    assert instant["status"] == 200, instant
    assert instant["body"]["timezone"] in ("Europe/Paris", "UTC")
    watched.check()
    context.close()


def test_a_task_that_repeats_after_completion_counts_from_completion(
    browser: Browser, web_server: Server
) -> None:
    paris = ZoneInfo("Europe/Paris")
    context = new_context(browser, web_server)
    page = context.new_page()
    watched = Watched(page)
    sign_up(page)
    long_ago = datetime.now(paris) - timedelta(days=10)
    page.fill("#qa-title", "Clean the filter")
    page.fill("#qa-date", long_ago.strftime("%Y-%m-%d"))
    page.fill("#qa-time", "08:15:00")
    page.click("#qa-more")
    page.select_option("#ed-repeat", "after")
    expect(page.locator("#after-hint")).to_be_visible()
    expect(page.locator("#preview-box")).to_be_hidden()
    page.fill("#ed-every", "0")
    page.click("#edit-form button[type=submit]")
    expect(page.locator("#ed-after-error")).not_to_be_empty()
    page.fill("#ed-every", "3")
    page.select_option("#ed-every-unit", "days")
    before = list_version(page)
    page.click("#edit-form button[type=submit]")
    wait_reloaded(page, before)
    task = call(page, "GET", "/api/tasks?q=Clean&status=open")["tasks"][0]
    series = call(page, "GET", f"/api/series/{task['series_id']}")
    assert series["repeat_after"] == "P3D" and series["recurrence"] is None

    # the dialog shows it as it was saved
    page.get_by_role("button", name="Edit Clean the filter").click()
    assert page.locator("#ed-repeat").input_value() == "after"
    assert page.locator("#ed-every").input_value() == "3"
    assert page.locator("#ed-every-unit").input_value() == "days"
    page.click("#ed-cancel")

    before = list_version(page)
    page.locator(".task", has_text="Clean the filter").locator("input[type=checkbox]").check()
    done_on = datetime.now(paris).date()
    wait_reloaded(page, before)
    row = page.locator(".task", has_text="Clean the filter")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("#2")
    expected = datetime.combine(done_on + timedelta(days=3), datetime.min.time()).replace(
        hour=8, minute=15, tzinfo=paris
    )
    # three days after the day it was done (not after the due date), at its time of day
    expect(row.locator("time")).to_contain_text(f"{expected.day} {expected.strftime('%b')}")
    expect(row.locator("time")).to_contain_text("08:15")
    nxt = call(page, "GET", "/api/tasks?q=Clean&status=open")["tasks"][0]
    assert datetime.fromisoformat(nxt["due_at"]) == expected
    assert nxt["occurrence"] == 2

    # by the hour: exactly that long after completion
    page.get_by_role("button", name="Edit Clean the filter").click()
    page.fill("#ed-every", "4")
    page.select_option("#ed-every-unit", "hours")
    before = list_version(page)
    page.click("#edit-form button[type=submit]")
    wait_reloaded(page, before)
    assert call(page, "GET", f"/api/series/{task['series_id']}")["repeat_after"] == "PT4H"
    before = list_version(page)
    start = datetime.now().astimezone()
    page.locator(".task", has_text="Clean the filter").locator("input[type=checkbox]").check()
    wait_reloaded(page, before)
    end = datetime.now().astimezone()
    third = call(page, "GET", "/api/tasks?q=Clean&status=open")["tasks"][0]
    due = datetime.fromisoformat(third["due_at"])
    assert start + timedelta(hours=4) - timedelta(seconds=1) <= due
    assert due <= end + timedelta(hours=4) + timedelta(seconds=1)
    watched.check()
    context.close()
