"""How `duetime tasks` reads times, durations and import files."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from duetime.cli_import import Reader, repeating
from duetime.cli_when import iso_duration, parse_reminder, parse_span, parse_when

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)  # a Thursday; 15:00 in Paris


@pytest.mark.parametrize(
    ("typed", "wall"),
    [
        ("tomorrow 9:00", "2026-12-04T09:00:00"),
        ("fri 17:00", "2026-12-04T17:00:00"),
        ("in 2 hours", "2026-12-03T17:00:00"),
        ("9am", "2026-12-04T09:00:00"),  # already past today: the next one
        ("dec 24 6pm", "2026-12-24T18:00:00"),
        ("next monday", "2026-12-07T09:00:00"),  # a date alone is the morning
        ("2027-01-05", "2027-01-05T09:00:00"),
    ],
)
def test_times_are_wall_times_in_the_zone_given(typed: str, wall: str) -> None:
    when = parse_when(typed, "Europe/Paris", NOW)
    assert when.wire() == wall and when.zone == "Europe/Paris"


def test_an_rfc3339_instant_is_taken_as_it_is() -> None:
    when = parse_when("2026-12-24T18:00:00+01:00", "Asia/Tokyo", NOW)
    assert when.local is None and when.wire() == "2026-12-24T17:00:00Z"


def test_a_wall_time_in_a_dst_gap_is_sent_as_typed_for_the_server_to_resolve() -> None:
    when = parse_when("2027-03-28 02:30", "Europe/Paris", NOW)  # does not exist that night
    assert when.wire() == "2027-03-28T02:30:00"  # the task API moves it and says so


@pytest.mark.parametrize("bad", ["", "whenever", "the day after never"])
def test_what_is_not_a_time_is_refused_with_examples(bad: str) -> None:
    with pytest.raises(ValueError, match="tomorrow 9:00"):
        parse_when(bad, "UTC", NOW)


@pytest.mark.parametrize(
    ("typed", "iso"),
    [("10m", "PT10M"), ("1h30m", "PT1H30M"), ("1d", "P1D"), ("1w", "P7D"), ("90s", "PT1M30S"),
     ("PT10M", "PT10M"), ("p1d", "P1D"), ("2d3h", "P2DT3H")],
)  # fmt: skip
def test_spans_become_iso_8601(typed: str, iso: str) -> None:
    assert parse_span(typed) == iso


@pytest.mark.parametrize("bad", ["", "5x", "10", "PT1X", "m10"])
def test_what_is_not_a_span_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_span(bad)


def test_iso_duration_of_zero_and_mixed_spans() -> None:
    from datetime import timedelta

    assert iso_duration(timedelta(0)) == "PT0S"
    assert iso_duration(timedelta(days=1, seconds=61)) == "P1DT1M1S"


def test_a_reminder_is_a_span_before_or_a_time() -> None:
    assert parse_reminder("10m", "UTC", NOW) == {"before": "PT10M"}
    assert parse_reminder("tomorrow 8:00", "Europe/Paris", NOW) == {"at": "2026-12-04T07:00:00Z"}
    with pytest.raises(ValueError, match="neither a duration"):
        parse_reminder("5x", "UTC", NOW)


@pytest.mark.parametrize(
    ("typed", "fields", "first"),
    [
        ("every day at 9am", {"recurrence": "daily"}, "2026-12-04T09:00:00"),
        ("every day at 20:00", {"recurrence": "daily"}, "2026-12-03T20:00:00"),
        ("every weekday", {"recurrence": "weekdays"}, "2026-12-04T09:00:00"),
        ("every monday, wed at 18:00", {"recurrence": "FREQ=WEEKLY;BYDAY=MO,WE"},
         "2026-12-07T18:00:00"),
        ("every tuesday and friday", {"recurrence": "FREQ=WEEKLY;BYDAY=TU,FR"},
         "2026-12-04T09:00:00"),
        ("every 3 days", {"recurrence": "FREQ=DAILY;INTERVAL=3"}, "2026-12-04T09:00:00"),
        ("every other week", {"recurrence": "FREQ=WEEKLY;INTERVAL=2"}, "2026-12-04T09:00:00"),
        ("every month", {"recurrence": "monthly"}, "2026-12-04T09:00:00"),
        ("every! 3 days", {"repeat_after": "P3D"}, "2026-12-04T09:00:00"),
        ("every! 4 hours", {"repeat_after": "PT4H"}, "2026-12-03T19:00:00"),
    ],
)  # fmt: skip
def test_todoist_recurring_dates(typed: str, fields: dict, first: str) -> None:
    got, when = repeating(typed, "Europe/Paris", NOW)
    assert got == fields and when.wire() == first


@pytest.mark.parametrize("bad", ["every blue moon", "every! month", "every"])
def test_recurring_dates_duetime_cannot_read_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        repeating(bad, "UTC", NOW)


TODOIST = (
    "TYPE,CONTENT,DESCRIPTION,PRIORITY,INDENT,AUTHOR,RESPONSIBLE,DATE,DATE_LANG,TIMEZONE\n"
    "meta,view_style=list,,,,,,,,\n"
    "section,Home,,,,,,,,\n"
    "task,Pay rent @home @money,,1,1,,,tomorrow 9:00,en,Europe/Paris\n"
    "note,IBAN in the drawer,,,,,,,,\n"
    ",,,,,,,,,\n"
    "task,Garbage,,2,1,,,every tuesday,en,\n"
    "task,Someday,,4,1,,,,,\n"
)


def test_a_todoist_export_maps_rows_labels_notes_and_priorities() -> None:
    read = Reader("America/New_York", NOW, zone_is_users=False).read("\ufeff" + TODOIST)
    assert read.problems == [] and dict(read.left_out) == {"meta": 1, "section": 1}
    (line_rent, rent), (line_bins, bins), (_, someday) = read.tasks
    assert (line_rent, line_bins) == ("line 4", "line 7")
    assert rent == {
        "title": "Pay rent",
        "tags": ["home", "money"],
        "description": "IBAN in the drawer",
        "priority": "high",
        "due_at": "2026-12-04T09:00:00",
        "timezone": "Europe/Paris",
    }
    assert bins["recurrence"] == "FREQ=WEEKLY;BYDAY=TU" and bins["priority"] == "medium"
    assert bins["timezone"] == "America/New_York"  # the reader's zone, kept on the task
    assert someday == {"title": "Someday", "priority": "low"}


def test_a_wall_time_in_the_users_own_zone_needs_no_timezone() -> None:
    read = Reader("Asia/Tokyo", NOW, zone_is_users=True).read("title,due\nx,tomorrow 9:00\n")
    assert read.tasks == [("line 2", {"title": "x", "due_at": "2026-12-04T09:00:00"})]


def test_a_plain_csv_uses_the_api_field_names_and_refuses_others() -> None:
    text = 'title,due,tags,reminders,priority\nRent,2026-12-24T18:00:00Z,"a, b","5m, 1h",HIGH\n'
    [(_, body)] = Reader("UTC", NOW, False).read(text).tasks
    assert body == {
        "title": "Rent",
        "priority": "high",
        "tags": ["a", "b"],
        "due_at": "2026-12-24T18:00:00Z",
        "reminders": [{"before": "PT5M"}, {"before": "PT1H"}],
    }
    odd = Reader("UTC", NOW, False).read("title,colour\nx,red\n")
    assert odd.tasks == [] and "unknown columns colour" in odd.problems[0]


def test_every_bad_row_is_named_by_its_line() -> None:
    text = 'title,due\nok,tomorrow\nbad,whenever\n"two\nlines",never ever\n'
    read = Reader("UTC", NOW, False).read(text)
    assert [p.split(":")[0] for p in read.problems] == ["line 3", "line 5"]


def test_json_takes_batch_bodies_and_what_list_printed() -> None:
    listed = [
        {
            "id": "a" * 32, "title": "Call", "description": "", "priority": "medium",
            "tags": [], "due_at": "2026-12-04T08:00:00Z", "timezone": "Europe/Paris",
            "local_due_at": "2026-12-04T09:00:00", "status": "open", "version": 3,
            "created_at": "x", "updated_at": "x", "completed_at": None,
            "follows_user_timezone": False, "series_id": None, "occurrence": None,
            "reminders": [
                {"id": "r", "before": "PT10M", "at": None, "fire_at": "x", "state": "scheduled",
                 "urgent": False, "snooze": False},
                {"id": "s", "before": None, "at": "2026-12-04T07:00:00Z", "fire_at": "x",
                 "state": "scheduled", "urgent": False, "snooze": True},
            ],
        }
    ]  # fmt: skip
    [(where, body)] = Reader("UTC", NOW, False).read(json.dumps(listed)).tasks
    assert where == "tasks[0]"
    assert body == {
        "title": "Call",
        "description": "",
        "priority": "medium",
        "tags": [],
        "due_at": "2026-12-04T09:00:00",  # the wall time, so it stays 09:00 in Paris
        "timezone": "Europe/Paris",
        "status": "open",
        "reminders": [{"before": "PT10M", "at": None, "urgent": False}],  # not the snooze
    }
    batch = Reader("UTC", NOW, False).read('{"tasks": [{"title": "a"}, 3]}')
    assert batch.tasks == [("tasks[0]", {"title": "a"})]
    assert batch.problems == ["tasks[1]: expected a task object"]
    assert Reader("UTC", NOW, False).read("[oops").problems[0].startswith("not JSON")


def test_a_file_of_another_kind_is_refused() -> None:
    assert "not a file duetime reads" in Reader("UTC", NOW, False).read("hello\n").problems[0]
