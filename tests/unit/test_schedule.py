"""Schedule expressions, DST policy, job planning and the tick after a delivery.

Tables come from the Dapr facts page and from Dapr v1.18.3's source (dapr/kit cron,
go-etcd-cron builder/validator/counter). A reference model checks the DST search, and
croniter (tests only) checks UTC cron arithmetic for off-by-one errors.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter  # type: ignore[import-untyped]
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from duetime.jobs.cron import CronSchedule, EverySchedule
from duetime.jobs.model import FailurePolicy, Job
from duetime.jobs.schedule import (
    MAX_NAME_BYTES,
    Plan,
    ScheduleEmptyError,
    ScheduleError,
    ends,
    next_tick,
    parse_schedule,
    plan_job,
    validate_name,
)

NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
ZONES = (
    "America/New_York",
    "Europe/London",
    "Pacific/Auckland",
    "Australia/Sydney",
    "Africa/Cairo",
    "Australia/Lord_Howe",
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ticks(expr: str, after: datetime, count: int) -> list[datetime]:
    schedule, found = parse_schedule(expr), []
    for _ in range(count):
        nxt = schedule.next_after(after)
        assert nxt is not None
        found.append(nxt)
        after = nxt
    return found


# --- grammar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("* * * * * *", "2026-01-01T09:00:00", ["09:00:01", "09:00:02"]),
        ("30 * * * * *", "2026-01-01T09:00:30", ["09:01:30", "09:02:30"]),
        (
            "0 30 9 * * MON-FRI",
            "2026-01-02T09:30:00",
            ["2026-01-05T09:30:00", "2026-01-06T09:30:00"],
        ),
        (
            "0 30 9 * * mon-fri",
            "2026-01-02T09:30:00",
            ["2026-01-05T09:30:00", "2026-01-06T09:30:00"],
        ),
        ("0 0 0 * * SUN", "2026-01-01T00:00:00", ["2026-01-04", "2026-01-11"]),
        ("0 0 0 * * 0", "2026-01-01T00:00:00", ["2026-01-04", "2026-01-11"]),
        ("0 0 0 * * sat,Sun", "2026-01-01T00:00:00", ["2026-01-03", "2026-01-04"]),
        ("0 0 0 1 JAN,jul *", "2026-01-01T00:00:00", ["2026-07-01", "2027-01-01"]),
        ("0 0 0 1 feb-apr/2 *", "2026-01-01T00:00:00", ["2026-02-01", "2026-04-01"]),
        ("*/20 * * * * *", "2026-01-01T09:00:00", ["09:00:20", "09:00:40", "09:01:00"]),
        ("5/20 * * * * *", "2026-01-01T09:00:00", ["09:00:05", "09:00:25", "09:00:45"]),
        ("0 10-20/5 * * * *", "2026-01-01T09:00:00", ["09:10:00", "09:15:00", "09:20:00"]),
        ("0 0 1,13 * * *", "2026-01-01T09:00:00", ["13:00:00", "2026-01-02T01:00:00"]),
        ("0 0 0 ? * MON", "2026-01-01T00:00:00", ["2026-01-05", "2026-01-12"]),
        ("0 0 0 1 * ?", "2026-01-01T00:00:00", ["2026-02-01", "2026-03-01"]),
        ("0 0 0 */1 * MON", "2026-01-01T00:00:00", ["2026-01-05", "2026-01-12"]),  # */1 is *
        ("*/100 * * * * *", "2026-01-01T09:00:00", ["09:01:00", "09:02:00"]),  # step > range
        ("@yearly", "2026-01-01T00:00:00", ["2027-01-01", "2028-01-01"]),
        ("@annually", "2026-06-01T00:00:00", ["2027-01-01", "2028-01-01"]),
        ("@monthly", "2026-01-15T00:00:00", ["2026-02-01", "2026-03-01"]),
        ("@weekly", "2026-01-01T00:00:00", ["2026-01-04", "2026-01-11"]),  # Sundays
        ("@daily", "2026-01-01T09:00:00", ["2026-01-02", "2026-01-03"]),
        ("@midnight", "2026-01-01T09:00:00", ["2026-01-02", "2026-01-03"]),
        ("@hourly", "2026-01-01T09:00:00", ["10:00:00", "11:00:00"]),
        ("TZ=UTC @hourly", "2026-01-01T09:00:00", ["10:00:00", "11:00:00"]),
        ("CRON_TZ=UTC  0 5 * * * *", "2026-01-01T09:00:00", ["09:05:00", "10:05:00"]),
        ("CRON_TZ=Asia/Tokyo\t0 0 9 * * *", "2026-01-01T09:00:00", ["2026-01-02T00:00:00"]),
        ("TZ=Asia/Kolkata 0 30 9 * * *", "2026-01-01T09:00:00", ["2026-01-02T04:00:00"]),
        (" 0 0 0 * * * ", "2026-01-01T09:00:00", ["2026-01-02"]),
        ("@every 10s", "2026-01-01T09:00:00", ["09:00:10", "09:00:20"]),
        ("@every 1h30m", "2026-01-01T09:00:00", ["10:30:00", "12:00:00"]),
        ("@every 500ms", "2026-01-01T09:00:00", ["09:00:00.500000", "09:00:01"]),
        ("@every 1us", "2026-01-01T09:00:00", ["09:00:00.000001"]),
    ],
)
def test_schedule_ticks(expr: str, after: str, expected: list[str]) -> None:
    start = utc(after)
    want = [utc(text) if "-" in text else utc(f"{start.date()}T{text}") for text in expected]
    assert ticks(expr, start, len(want)) == want


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("", "it is empty"),
        (
            "0 30 9 * *",
            "cron needs 6 fields (second minute hour day-of-month month day-of-week), got 5",
        ),
        ("0 0 30 9 * * 2026", "cron needs 6 fields"),
        ("@every", "unknown descriptor"),
        ("@reboot", "unknown descriptor"),
        ("@daily ", "unknown descriptor"),
        ("@Daily", "unknown descriptor"),
        ("60 * * * * *", 'second field "60": 60 is outside 0-59'),
        ("* 60 * * * *", 'minute field "60": 60 is outside 0-59'),
        ("0 0 24 * * *", 'hour field "24": 24 is outside 0-23'),
        ("0 0 0 0 * *", 'day-of-month field "0": 0 is outside 1-31'),
        ("0 0 0 32 * *", 'day-of-month field "32"'),
        ("0 0 0 1 13 *", 'month field "13": 13 is outside 1-12'),
        ("0 0 0 1 0 *", 'month field "0"'),
        ("0 0 0 * * 7", 'day-of-week field "7": 7 is outside 0-6; use 0 or SUN for Sunday'),
        ("0 0 0 * * SUN-7", "7 is outside 0-6"),
        ("0 0 0 * * MONDAY", '"MONDAY" is not a number or a name (0-6)'),
        ("0 0 0 * JANUARY *", '"JANUARY" is not a number or a name (1-12)'),
        ("0 0 MON * * *", 'hour field "MON": "MON" is not a number (0-23)'),
        ("0 0 0 * * FRI-MON", "range FRI-MON runs backwards"),
        ("0 5-1 * * * *", "range 5-1 runs backwards"),
        ("*/0 * * * * *", "a step must be at least 1"),
        ("1,,2 * * * * *", 'cannot read ""'),
        ("1, * * * * *", 'cannot read ""'),
        ("*-5 * * * * *", 'cannot read "*-5"'),
        ("1-2-3 * * * * *", 'cannot read "1-2-3"'),
        ("1/2/3 * * * * *", 'cannot read "1/2/3"'),
        ("+5 * * * * *", 'cannot read "+5"'),
        ("-5 * * * * *", 'cannot read "-5"'),
        ("L * * * * *", '"L" is not a number'),
        ("0 0 0 30 2 *", "can never fire"),
        ("0 0 0 31 4,6,9,11 *", "can never fire"),
        ("0 0 0 30,31 FEB ?", "can never fire"),
        ("@every 0s", "positive duration"),
        ("@every -1s", "positive duration"),
        ("@every 5ns", "positive duration"),
        ("@every 10", "missing unit"),
        ("@every 1x", 'unknown unit "x"'),
        ("@every  1s", "Go duration"),
        ("TZ=Mars/Olympus 0 0 0 * * *", 'unknown time zone "Mars/Olympus" in TZ='),
        ("CRON_TZ=America 0 0 0 * * *", 'unknown time zone "America"'),
        ("CRON_TZ=../etc/passwd 0 0 0 * * *", "unknown time zone"),
        ("CRON_TZ=Local 0 0 0 * * *", 'unknown time zone "Local"'),
        ("TZ= 0 0 0 * * *", "needs an IANA time zone name"),
        ("TZ=UTC", "must be followed by a space and a schedule"),
        ("CRON_TZ=Asia/Tokyo", "must be followed by a space and a schedule"),
        ("TZ=UTC ", "must be followed by a space and a schedule"),
        ("CRON_TZ=Europe/Rome @every 1h", "CRON_TZ= cannot be used with @every"),
        ("TZ=Asia/Tokyo @every 30m", "TZ= cannot be used with @every"),
        ("TZ=Mars/Olympus @every 30m", "unknown time zone"),
        ("0 30 9 * * * CRON_TZ=UTC", "cron needs 6 fields"),
    ],
)
def test_schedule_rejects(expr: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expr)
    message = str(info.value)
    assert message.startswith(f'schedule "{expr}": '.replace("\t", "\\t"))
    assert reason in message
    assert info.value.field == "schedule"


def test_parse_schedule_is_memoised() -> None:
    assert parse_schedule("0 */5 * * * *") is parse_schedule("0 */5 * * * *")


def test_parsed_forms() -> None:
    every = parse_schedule("@every 1m30s")
    assert every == EverySchedule("@every 1m30s", timedelta(seconds=90))
    cron = parse_schedule("CRON_TZ=Europe/London 0 0 9 * * MON")
    assert isinstance(cron, CronSchedule)
    assert cron.zone == ZoneInfo("Europe/London")
    assert cron.expression == "CRON_TZ=Europe/London 0 0 9 * * MON"
    assert cron.weekdays == (1,)


def test_next_after_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_schedule("@daily").next_after(datetime(2026, 1, 1))


def test_next_after_accepts_any_zone_and_returns_utc() -> None:
    after = NOW.astimezone(ZoneInfo("Asia/Tokyo"))
    result = parse_schedule("@hourly").next_after(after)
    assert result == utc("2026-01-01T10:00:00")
    assert result is not None and result.tzinfo is UTC


# --- day of month, day of week, calendars ----------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # Both day fields restricted: a day matches if either matches (robfig).
        (
            "0 0 0 1 * MON",
            "2026-01-01",
            ["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26", "2026-02-01", "2026-02-02"],
        ),
        # A step clears robfig's star flag: still "restricted", so OR.
        ("0 0 0 */10 * MON", "2026-01-01", ["2026-01-05", "2026-01-11", "2026-01-12"]),
        ("0 0 0 1-31 * MON", "2026-01-01", ["2026-01-02", "2026-01-03"]),
        # One field is * or ?: both must match.
        ("0 0 0 * * MON", "2026-01-01", ["2026-01-05", "2026-01-12"]),
        ("0 0 0 13 * *", "2026-01-01", ["2026-01-13", "2026-02-13"]),
        ("0 0 0 13 * ?", "2026-01-01", ["2026-01-13", "2026-02-13"]),
        ("0 0 0 *,13 * FRI", "2026-01-01", ["2026-01-02", "2026-01-09"]),
        # The 31st skips months without one.
        (
            "0 0 0 31 * *",
            "2026-01-01",
            [
                "2026-01-31",
                "2026-03-31",
                "2026-05-31",
                "2026-07-31",
                "2026-08-31",
                "2026-10-31",
                "2026-12-31",
                "2027-01-31",
            ],
        ),
        ("0 0 12 30 * *", "2026-01-30T12:00:00", ["2026-03-30T12:00:00"]),
        # Feb 29 only in leap years; 2100 is not one.
        ("0 0 0 29 2 *", "2026-01-01", ["2028-02-29", "2032-02-29"]),
        ("0 0 0 29 2 *", "2096-03-01", ["2104-02-29"]),
        ("0 0 0 29 FEB ?", "2024-02-29", ["2028-02-29"]),
        ("0 0 0 1-1 * *", "2000-01-01", ["2000-02-01"]),  # robfig: a one-value range
    ],
)
def test_day_rules(expr: str, after: str, expected: list[str]) -> None:
    assert ticks(expr, utc(after if "T" in after else after + "T00:00:00"), len(expected)) == [
        utc(day if "T" in day else day + "T00:00:00") for day in expected
    ]


def test_search_ends_at_the_calendar_limit() -> None:
    assert parse_schedule("0 0 0 29 2 *").next_after(utc("9996-03-01T00:00:00")) is None
    assert parse_schedule("@daily").next_after(utc("9999-12-31T00:00:00")) is None
    assert (
        parse_schedule("CRON_TZ=Asia/Tokyo @daily").next_after(utc("9999-12-31T00:00:00")) is None
    )
    assert parse_schedule("@every 1h").next_after(utc("9999-12-31T23:30:00")) is None


# --- DST -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "cron", "after", "expected"),
    [
        # New York 2026: 02:00 EST -> 03:00 EDT on Mar 8; 02:00 EDT -> 01:00 EST on Nov 1.
        (
            "America/New_York",
            "0 30 2 * * *",
            "2026-03-07T12:00",
            ["2026-03-08T07:30", "2026-03-09T06:30"],
        ),  # gap: 03:30 EDT
        (
            "America/New_York",
            "0 30 2 * * *",
            "2026-03-08T07:10",
            ["2026-03-08T07:30"],
        ),  # 03:10 EDT: the moved 02:30 is still ahead
        (
            "America/New_York",
            "0 30 1 * * *",
            "2026-10-31T12:00",
            ["2026-11-01T05:30", "2026-11-02T06:30"],
        ),  # fold: first (EDT) occurrence
        (
            "America/New_York",
            "0 0 * * * *",
            "2026-11-01T03:30",
            ["2026-11-01T04:00", "2026-11-01T05:00", "2026-11-01T07:00", "2026-11-01T08:00"],
        ),
        (
            "America/New_York",
            "0 0 * * * *",
            "2026-03-08T05:30",
            ["2026-03-08T06:00", "2026-03-08T07:00", "2026-03-08T08:00"],
        ),
        (
            "America/New_York",
            "0 * * * * *",
            "2026-11-01T05:58:30",
            ["2026-11-01T05:59", "2026-11-01T07:00"],
        ),
        (
            "America/New_York",
            "0 * * * * *",
            "2026-11-01T06:30",  # inside the repeat
            ["2026-11-01T07:00", "2026-11-01T07:01"],
        ),
        (
            "America/New_York",
            "0 10,30 2,3 * * *",
            "2026-03-08T06:00",
            ["2026-03-08T07:10", "2026-03-08T07:30", "2026-03-09T06:10"],
        ),  # merged walls
        # London 2026: 01:00 GMT -> 02:00 BST on Mar 29; 02:00 BST -> 01:00 GMT on Oct 25.
        (
            "Europe/London",
            "0 30 1 * * *",
            "2026-03-28T12:00",
            ["2026-03-29T01:30", "2026-03-30T00:30"],
        ),
        (
            "Europe/London",
            "0 30 1 * * *",
            "2026-10-24T12:00",
            ["2026-10-25T00:30", "2026-10-26T01:30"],
        ),
        (
            "Europe/London",
            "0 0 * * * *",
            "2026-10-24T23:30",
            ["2026-10-25T00:00", "2026-10-25T02:00", "2026-10-25T03:00"],
        ),
        # Auckland 2026: 03:00 NZDT -> 02:00 NZST on Apr 5; 02:00 -> 03:00 NZDT on Sep 27.
        (
            "Pacific/Auckland",
            "0 30 2 * * *",
            "2026-09-26T00:00",
            ["2026-09-26T14:30", "2026-09-27T13:30"],
        ),
        (
            "Pacific/Auckland",
            "0 30 2 * * *",
            "2026-04-04T00:00",
            ["2026-04-04T13:30", "2026-04-05T14:30"],
        ),
        (
            "Pacific/Auckland",
            "0 0 * * * *",
            "2026-04-04T12:30",
            ["2026-04-04T13:00", "2026-04-04T15:00"],
        ),
        # Sydney 2026: 03:00 AEDT -> 02:00 AEST on Apr 5; 02:00 -> 03:00 AEDT on Oct 4.
        (
            "Australia/Sydney",
            "0 30 2 * * *",
            "2026-10-03T00:00",
            ["2026-10-03T16:30", "2026-10-04T15:30"],
        ),
        (
            "Australia/Sydney",
            "0 30 2 * * *",
            "2026-04-04T00:00",
            ["2026-04-04T15:30", "2026-04-05T16:30"],
        ),
        # Cairo 2026: midnight Apr 24 does not exist (00:00 -> 01:00); Oct 29 23:00 repeats.
        (
            "Africa/Cairo",
            "0 30 0 * * *",
            "2026-04-22T12:00",
            ["2026-04-22T22:30", "2026-04-23T22:30", "2026-04-24T21:30"],
        ),
        (
            "Africa/Cairo",
            "@daily",
            "2026-04-22T12:00",
            ["2026-04-22T22:00", "2026-04-23T22:00", "2026-04-24T21:00"],
        ),
        (
            "Africa/Cairo",
            "0 30 23 * * *",
            "2026-10-29T12:00",
            ["2026-10-29T20:30", "2026-10-30T21:30"],
        ),
        # Lord Howe 2026: a 30-minute shift. 02:00 -> 01:30 on Apr 5; 02:00 -> 02:30 on Oct 4.
        (
            "Australia/Lord_Howe",
            "0 15 2 * * *",
            "2026-10-03T00:00",
            ["2026-10-03T15:45", "2026-10-04T15:15"],
        ),
        (
            "Australia/Lord_Howe",
            "0 45 1 * * *",
            "2026-04-04T00:00",
            ["2026-04-04T14:45", "2026-04-05T15:15"],
        ),
        (
            "Australia/Lord_Howe",
            "0 */15 1-2 * * *",
            "2026-04-04T14:40",
            ["2026-04-04T14:45", "2026-04-04T15:30", "2026-04-04T15:45"],
        ),
    ],
)
def test_dst_matrix(zone: str, cron: str, after: str, expected: list[str]) -> None:
    assert ticks(f"CRON_TZ={zone} {cron}", utc(after), len(expected)) == [
        utc(text) for text in expected
    ]


def test_every_ignores_dst() -> None:
    assert ticks("@every 1h", utc("2026-03-08T05:30"), 3) == [
        utc("2026-03-08T06:30"),
        utc("2026-03-08T07:30"),
        utc("2026-03-08T08:30"),
    ]


# --- property tests ------------------------------------------------------------------------


@cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """UTC instants (to the hour) around which `zone_name` changes offset, 2025-2028."""
    zone, found = ZoneInfo(zone_name), []
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment.year < 2029:
        later = moment + timedelta(hours=1)
        if moment.astimezone(zone).utcoffset() != later.astimezone(zone).utcoffset():
            found.append(later)
        moment = later
    return tuple(found)


zones = st.sampled_from(ZONES)


@st.composite
def near_transitions(draw: st.DrawFn, zone: str) -> datetime:
    base = draw(st.sampled_from(transitions(zone)))
    shift = draw(st.integers(-48 * 3600, 48 * 3600))
    micros = draw(st.sampled_from([0, 0, 1, 500_000, 999_999]))
    return base + timedelta(seconds=shift, microseconds=micros)


def field(values: range, max_items: int = 3) -> st.SearchStrategy[str]:
    single = st.sampled_from(values).map(str)
    listed = st.lists(st.sampled_from(values), min_size=2, max_size=max_items, unique=True).map(
        lambda items: ",".join(map(str, sorted(items)))
    )
    # No "a-a": croniter reads a one-value range as "*" (robfig, and duetime, read it as "a").
    ranged = st.lists(st.sampled_from(values), min_size=2, max_size=2, unique=True).map(
        lambda pair: f"{min(pair)}-{max(pair)}"
    )
    stepped = st.integers(2, 30).map(lambda step: f"*/{step}")
    return st.one_of(single, listed, ranged, stepped, st.just("*"))


@st.composite
def crons(draw: st.DrawFn) -> str:
    """Valid 6-field crons with few ticks per day (so a reference model can enumerate them)."""
    second = draw(st.sampled_from(["0", "30", "15,45"]))
    minute = draw(st.one_of(st.sampled_from(["0", "30", "0,15", "*/20", "45"]), field(range(60))))
    hour = draw(field(range(24), 4))
    dom = draw(st.sampled_from(["*", "*", "1", "1-15", "*/2", "31", "29"]))
    month = draw(st.sampled_from(["*", "*", "*", "1-6", "3,4,10,11", "FEB"]))
    dow = draw(st.sampled_from(["*", "*", "?", "SUN", "MON-FRI", "0,6"]))
    expr = f"{second} {minute} {hour} {dom} {month} {dow}"
    try:
        parse_schedule(expr)
    except ScheduleError:
        assume(False)
    return expr


def reference_next(expr: str, zone_name: str, after: datetime) -> datetime | None:
    """Brute force: every matching wall time in a window, each read with fold=0."""
    schedule = parse_schedule(f"CRON_TZ={zone_name} {expr}")
    assert isinstance(schedule, CronSchedule)
    zone = ZoneInfo(zone_name)
    first_day = after.astimezone(zone).date() - timedelta(days=2)
    instants: list[datetime] = []
    last_offset = 80
    for offset in range(80):
        if offset > last_offset:
            break  # a later day's walls cannot land before an earlier day's
        day = first_day + timedelta(days=offset)
        if day.month not in schedule.months:
            continue
        dom = day.day in schedule.days
        dow = (day.weekday() + 1) % 7 in schedule.weekdays
        if not ((dom and dow) if schedule.day_and else (dom or dow)):
            continue
        for hour, minute, second in itertools.product(
            schedule.hours, schedule.minutes, schedule.seconds
        ):
            wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)
            instant = wall.astimezone(UTC)
            if instant > after:
                instants.append(instant)
                last_offset = min(last_offset, offset + 1)
    return min(instants, default=None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), crons(), zones)
def test_zone_search_matches_the_reference_model(
    data: st.DataObject, expr: str, zone_name: str
) -> None:
    after = data.draw(near_transitions(zone_name))
    expected = reference_next(expr, zone_name, after)
    assume(expected is not None)  # nothing within the reference window
    assert parse_schedule(f"CRON_TZ={zone_name} {expr}").next_after(after) == expected


@settings(max_examples=150, deadline=None)
@given(st.data(), crons(), zones)
def test_ticks_strictly_increase(data: st.DataObject, expr: str, zone_name: str) -> None:
    schedule = parse_schedule(f"CRON_TZ={zone_name} {expr}")
    after = data.draw(near_transitions(zone_name))
    for _ in range(20):
        nxt = schedule.next_after(after)
        assert nxt is not None
        assert nxt > after
        assert nxt.tzinfo is UTC
        assert nxt.microsecond == 0
        after = nxt


@settings(max_examples=300, deadline=None)
@given(
    zones,
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45, 59]),
    st.sampled_from([0, 30]),
    st.sampled_from(ZONES).flatmap(lambda zone: st.sampled_from(transitions(zone))),
    st.integers(-3, 3),
)
def test_daily_tick_has_its_wall_time_whenever_it_exists(
    zone_name: str, hour: int, minute: int, second: int, near: datetime, day_shift: int
) -> None:
    zone = ZoneInfo(zone_name)
    day = near.astimezone(zone).date() + timedelta(days=day_shift)
    wall = datetime(day.year, day.month, day.day, hour, minute, second)
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    exists = instant.astimezone(zone).replace(tzinfo=None) == wall
    schedule = parse_schedule(f"CRON_TZ={zone_name} {second} {minute} {hour} * * *")
    start_of_day = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
    tick = schedule.next_after(start_of_day - timedelta(microseconds=1))
    assert tick is not None
    if exists:
        assert tick.astimezone(zone).replace(tzinfo=None) == wall
    else:  # a gap: moved forward by the gap, onto the same instant as the fold=0 reading
        assert tick == instant


def croniter_friendly_field(values: range, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    plain = field(values)
    bounds = st.lists(st.sampled_from(values), min_size=2, max_size=2, unique=True)
    stepped_range = st.tuples(bounds, st.integers(1, 9))
    return st.one_of(
        plain,
        stepped_range.map(lambda t: f"{min(t[0])}-{max(t[0])}/{t[1]}"),
        st.tuples(st.sampled_from(values), st.integers(2, 9)).map(lambda t: f"{t[0]}/{t[1]}"),
        *([st.sampled_from(names)] if names else []),
    )


@st.composite
def utc_crons(draw: st.DrawFn) -> str:
    """Crons on which robfig and croniter agree: when both day fields are restricted they use
    only forms both libraries treat as restricted (no *, no *-steps)."""
    second = draw(croniter_friendly_field(range(60)))
    minute = draw(croniter_friendly_field(range(60)))
    hour = draw(croniter_friendly_field(range(24)))
    month = draw(st.one_of(st.just("*"), croniter_friendly_field(range(1, 13), ("JAN", "jun"))))
    day_names = ("MON", "fri", "SUN", "MON-FRI")
    restricted_dom = croniter_friendly_field(range(1, 32)).filter(lambda f: "*" not in f)
    restricted_dow = croniter_friendly_field(range(7), day_names).filter(lambda f: "*" not in f)
    dom, dow = draw(
        st.one_of(
            st.tuples(croniter_friendly_field(range(1, 32)), st.just("*")),
            st.tuples(st.just("*"), croniter_friendly_field(range(7), day_names)),
            st.tuples(restricted_dom, restricted_dow),
        )
    )
    expr = f"{second} {minute} {hour} {dom} {month} {dow}"
    try:
        parse_schedule(expr)
    except ScheduleError:
        assume(False)
    return expr


@settings(max_examples=150, deadline=None)
@given(
    utc_crons(),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
)
def test_utc_cron_agrees_with_croniter(expr: str, start: datetime) -> None:
    reference = croniter(expr, start, second_at_beginning=True)
    after = start
    for _ in range(5):
        expected = reference.get_next(datetime)
        assert parse_schedule(expr).next_after(after) == expected
        after = expected


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "valid",
        "fo.o",
        "fo...o",
        "my-job_1",
        "foo.BAR_f-oo||foo",
        "||",
        "foo||",
        "foo|bar",
        "my@reminder",
        "café||piñata",
        "with space",
        "a:b",
        "a" * MAX_NAME_BYTES,
        "é" * (MAX_NAME_BYTES // 2),
    ],
)
def test_valid_names(name: str) -> None:
    validate_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "must not be empty"),
        ("/", "must not contain / \\ # or ? (found /)"),
        ("/foo/", "found /"),
        ("bad/name", "found /"),
        ("bad\\name", "found \\"),
        ("bad#name", "found #"),
        ("bad?name", "found ?"),
        ("a?b#c", "found # ?"),
        ("bad\x00name", "control characters"),
        ("bad\nname", "control characters"),
        ("bad\x7fname", "control characters"),
        ("bad\u0085name", "control characters"),
        (".", 'must not be "." or ".."'),
        ("..", 'must not be "." or ".."'),
        ("a" * 600, f"at most {MAX_NAME_BYTES} bytes of UTF-8, got 600"),
        ("é" * (MAX_NAME_BYTES // 2 + 1), "got 402"),
    ],
)
def test_invalid_names(name: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as info:
        validate_name(name)
    assert str(info.value).startswith("name ")
    assert reason in str(info.value)
    assert info.value.field == "name"


# --- plan_job -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "first", "expires"),
    [
        (Job("a", due_time="10s"), NOW + timedelta(seconds=10), None),
        (Job("a", due_time="2026-01-01T10:00:00Z"), utc("2026-01-01T10:00"), None),
        (Job("a", due_time="2025-01-01T00:00:00Z"), utc("2025-01-01T00:00"), None),  # past
        (Job("a", due_time="PT1M", repeats=1), NOW + timedelta(minutes=1), None),
        (Job("a", schedule="0 30 9 * * *"), utc("2026-01-01T09:30"), None),
        (Job("a", schedule="0 0 9 * * *"), utc("2026-01-02T09:00"), None),  # strictly after
        (Job("a", schedule="@every 10s"), NOW + timedelta(seconds=10), None),
        (Job("a", schedule="@every 10s", due_time="1s"), NOW + timedelta(seconds=1), None),
        (
            Job("a", schedule="@daily", due_time="2026-01-01T09:00:05Z"),
            utc("2026-01-01T09:00:05"),
            None,
        ),
        (Job("a", schedule="@hourly", ttl="2h"), utc("2026-01-01T10:00"), NOW + timedelta(hours=2)),
        (
            Job("a", schedule="@hourly", due_time="1h", ttl="1h"),
            utc("2026-01-01T10:00"),
            utc("2026-01-01T11:00"),
        ),  # relative ttl counts from dueTime
        (
            Job("a", schedule="@hourly", due_time="1h", ttl="0s"),
            utc("2026-01-01T10:00"),
            utc("2026-01-01T10:00"),
        ),  # ending at dueTime is allowed
        (
            Job("a", schedule="@hourly", ttl="2026-01-02T00:00:00Z"),
            utc("2026-01-01T10:00"),
            utc("2026-01-02T00:00"),
        ),
        (Job("a", schedule="@hourly", ttl="1h"), utc("2026-01-01T10:00"), utc("2026-01-01T10:00")),
        (
            Job("a", schedule="@every 1s", repeats=3, failure_policy=FailurePolicy.drop()),
            NOW + timedelta(seconds=1),
            None,
        ),
        (
            Job("a", due_time="0s", failure_policy=FailurePolicy("constant", timedelta(0), None)),
            NOW,
            None,
        ),
    ],
)
def test_plan_job_first_fire(job: Job, first: datetime, expires: datetime | None) -> None:
    plan = plan_job(job, NOW)
    assert plan.first_fire_at == first
    assert plan.expires_at == expires
    assert plan.repeats == job.repeats
    assert (plan.schedule is None) == (job.schedule is None)


def test_plan_job_is_deterministic_and_utc() -> None:
    job = Job("a", schedule="@every 7s", due_time="3s", ttl="P1D")
    local_now = NOW.astimezone(ZoneInfo("Asia/Tokyo"))
    assert plan_job(job, local_now) == plan_job(job, NOW)
    assert plan_job(job, NOW).first_fire_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("job", "field", "fragment"),
    [
        (Job(""), "name", 'name "": must not be empty'),
        (Job("a"), "schedule", "schedule: a job needs a schedule, a dueTime or both"),
        (Job("bad/name", schedule="@daily"), "name", 'name "bad/name"'),
        (Job("a", due_time="10s", repeats=2), "repeats", "repeats 2: needs a schedule"),
        (Job("a", schedule="@daily", repeats=0), "repeats", "repeats 0: must be at least 1"),
        (Job("a", schedule="@daily", repeats=-1), "repeats", "repeats -1: must be at least 1"),
        (Job("a", schedule="@daily", repeats=2**32), "repeats", "at most 4294967295"),
        (Job("a", due_time="10s", ttl="1h"), "ttl", 'ttl "1h": needs a schedule'),
        (Job("a", schedule="0 30 9 * *"), "schedule", "cron needs 6 fields"),
        (Job("a", schedule=""), "schedule", 'schedule "": it is empty'),
        (Job("a", schedule="CRON_TZ=Nowhere/Land @daily"), "schedule", '"Nowhere/Land"'),
        (Job("a", schedule="0 0 0 30 2 *"), "schedule", "can never fire"),
        (Job("a", due_time="tomorrow"), "dueTime", 'dueTime: "tomorrow" is not an RFC3339'),
        (Job("a", due_time=""), "dueTime", "dueTime: "),
        (Job("a", due_time="10"), "dueTime", "missing unit"),
        (Job("a", due_time="2026-01-01T09:00:00"), "dueTime", "needs a time zone offset"),
        (Job("a", due_time="R5/PT10S"), "dueTime", "repeating"),
        (Job("a", schedule="@daily", ttl="soon"), "ttl", 'ttl: "soon" is not'),
        (Job("a", schedule="@daily", ttl="R2/PT1H"), "ttl", "repeating"),
        (
            Job("a", schedule="@daily", due_time="2h", ttl="2026-01-01T10:00:00Z"),
            "ttl",
            'ttl "2026-01-01T10:00:00Z": ends at 2026-01-01T10:00:00Z, before the dueTime '
            "2026-01-01T11:00:00Z",
        ),
        (Job("a", schedule="@daily", due_time="2h", ttl="-1s"), "ttl", "before the dueTime"),
        (
            Job("a", schedule="@daily", ttl="1h"),
            "ttl",
            "before the schedule's first tick at 2026-01-02T00:00:00Z",
        ),
        (Job("a", schedule="@hourly", ttl="2025-01-01T00:00:00Z"), "ttl", "before the schedule"),
        (
            Job(
                "a", due_time="1s", failure_policy=FailurePolicy("constant", -timedelta(seconds=1))
            ),
            "failurePolicy",
            "failurePolicy.constant.interval -1s: must not be negative",
        ),
        (
            Job("a", due_time="1s", failure_policy=FailurePolicy("constant", max_retries=-1)),
            "failurePolicy",
            "failurePolicy.constant.maxRetries -1: must be at least 0",
        ),
    ],
)
def test_plan_job_rejects(job: Job, field: str, fragment: str) -> None:
    with pytest.raises(ScheduleError) as info:
        plan_job(job, NOW)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert str(info.value).startswith(field)


def test_empty_schedule_has_its_own_error_type() -> None:
    with pytest.raises(ScheduleEmptyError):
        plan_job(Job("a", repeats=2, ttl="1h"), NOW)
    with pytest.raises(ScheduleEmptyError):  # checked before the name, as daprd does
        plan_job(Job("bad/name"), NOW)
    with pytest.raises(ScheduleError) as info:
        plan_job(Job("a", due_time="10s", repeats=2), NOW)
    assert not isinstance(info.value, ScheduleEmptyError)


def test_plan_job_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan_job(Job("a", due_time="1s"), datetime(2026, 1, 1))


# --- the tick after a delivery ---------------------------------------------------------------


def plan_for(
    schedule: str | None, first: str, *, expires: str | None = None, repeats: int | None = None
) -> Plan:
    parsed = parse_schedule(schedule) if schedule else None
    return Plan(utc(first), utc(expires) if expires else None, parsed, repeats)


@pytest.mark.parametrize(
    ("plan", "last_tick", "now", "fired", "expected"),
    [
        # One-shot jobs end after their trigger.
        (plan_for(None, "2026-01-01T09:00"), "2026-01-01T09:00", "2026-01-01T09:00", 1, None),
        # Cron: on time, then coalesced after downtime (first tick strictly after now).
        (
            plan_for("0 * * * * *", "2026-01-01T10:00"),
            "2026-01-01T10:00",
            "2026-01-01T10:00:00.2",
            1,
            "2026-01-01T10:01",
        ),
        (
            plan_for("0 * * * * *", "2026-01-01T10:00"),
            "2026-01-01T10:00",
            "2026-01-01T10:05:30",
            1,
            "2026-01-01T10:06",
        ),
        (
            plan_for("0 * * * * *", "2026-01-01T10:00"),
            "2026-01-01T10:00",
            "2026-01-01T10:05:00",
            1,
            "2026-01-01T10:06",
        ),
        # Clock behind the tick (never fire early): still strictly after last_tick.
        (
            plan_for("0 * * * * *", "2026-01-01T10:00"),
            "2026-01-01T10:00",
            "2026-01-01T09:59:59",
            1,
            "2026-01-01T10:01",
        ),
        # @every stays on the grid anchored at the first fire.
        (
            plan_for("@every 10s", "2026-01-01T12:00:03"),
            "2026-01-01T12:00:03",
            "2026-01-01T12:00:03.5",
            1,
            "2026-01-01T12:00:13",
        ),
        (
            plan_for("@every 10s", "2026-01-01T12:00:03"),
            "2026-01-01T12:00:03",
            "2026-01-01T12:01:00",
            1,
            "2026-01-01T12:01:03",
        ),
        (
            plan_for("@every 10s", "2026-01-01T12:00:03"),
            "2026-01-01T12:00:53",
            "2026-01-01T12:01:03",
            6,
            "2026-01-01T12:01:13",
        ),
        (
            plan_for("@every 10s", "2026-01-01T12:00:03"),
            "2026-01-01T12:00:03",
            "2026-01-01T11:00:00",
            1,
            "2026-01-01T12:00:13",
        ),
        (
            plan_for("@every 1h", "2026-01-01T12:00:00"),
            "2026-01-03T12:00:00",
            "2026-01-03T12:00:00",
            49,
            "2026-01-03T13:00:00",
        ),
        (
            plan_for("@every 1.5s", "2026-01-01T00:00:00.5"),
            "2026-01-01T00:00:00.5",
            "2026-01-01T00:01:00",
            1,
            "2026-01-01T00:01:00.5",  # 0.5 + 40 x 1.5
        ),
        # Repeats.
        (
            plan_for("@hourly", "2026-01-01T10:00", repeats=3),
            "2026-01-01T11:00",
            "2026-01-01T11:00",
            2,
            "2026-01-01T12:00",
        ),
        (
            plan_for("@hourly", "2026-01-01T10:00", repeats=3),
            "2026-01-01T12:00",
            "2026-01-01T12:00",
            3,
            None,
        ),
        # ttl: a tick exactly at the expiry still fires; one after it does not.
        (
            plan_for("@hourly", "2026-01-01T10:00", expires="2026-01-01T12:00"),
            "2026-01-01T11:00",
            "2026-01-01T11:00",
            2,
            "2026-01-01T12:00",
        ),
        (
            plan_for("@hourly", "2026-01-01T10:00", expires="2026-01-01T12:00"),
            "2026-01-01T12:00",
            "2026-01-01T12:00",
            3,
            None,
        ),
        (
            plan_for("@every 45m", "2026-01-01T10:00", expires="2026-01-01T11:00"),
            "2026-01-01T10:00",
            "2026-01-01T10:00",
            1,
            "2026-01-01T10:45",
        ),
        (
            plan_for("@every 45m", "2026-01-01T10:00", expires="2026-01-01T11:00"),
            "2026-01-01T10:45",
            "2026-01-01T10:45",
            2,
            None,
        ),
    ],
)
def test_next_tick(plan: Plan, last_tick: str, now: str, fired: int, expected: str | None) -> None:
    result = next_tick(plan, last_tick=utc(last_tick), now=utc(now), fired=fired)
    assert result == (utc(expected) if expected else None)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 10_000_000),
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 10**12),
)
def test_every_grid_after_coalescing(interval_ms: int, first: datetime, gap_us: int) -> None:
    interval = timedelta(milliseconds=interval_ms)
    plan = Plan(first, None, EverySchedule(f"@every {interval_ms}ms", interval))
    now = first + timedelta(microseconds=gap_us)
    tick = next_tick(plan, last_tick=first, now=now, fired=1)
    assert tick is not None
    assert tick > now
    assert tick - interval <= now
    assert (tick - first) % interval == timedelta(0)


def test_ends() -> None:
    plan = plan_for("@hourly", "2026-01-01T10:00", expires="2026-01-01T12:00", repeats=5)
    assert not ends(plan, tick=utc("2026-01-01T12:00"), fired=4)
    assert ends(plan, tick=utc("2026-01-01T12:00"), fired=5)
    assert ends(plan, tick=utc("2026-01-01T12:00:00.000001"), fired=1)
    assert ends(plan, tick=None, fired=1)
    assert not ends(
        plan_for("@hourly", "2026-01-01T10:00"), tick=utc("2099-01-01T00:00"), fired=10**6
    )


def test_plan_then_ticks_end_to_end() -> None:
    """A recurring job with repeats and ttl, driven the way an engine would drive it."""
    job = Job(
        "daily-standup",
        schedule="CRON_TZ=Europe/London 0 30 9 * * MON-FRI",
        due_time="2026-03-27T09:30:00Z",
        repeats=4,
        ttl="P14D",
    )
    plan = plan_job(job, NOW)
    delivered: list[datetime] = []
    tick: datetime | None = plan.first_fire_at
    fired = 0
    while tick is not None:
        delivered.append(tick)
        fired += 1
        tick = next_tick(plan, last_tick=tick, now=tick, fired=fired)
    assert delivered == [
        utc("2026-03-27T09:30"),  # dueTime (Friday, GMT)
        utc("2026-03-30T08:30"),  # Monday, now BST
        utc("2026-03-31T08:30"),
        utc("2026-04-01T08:30"),
    ]


def test_schedule_field_on_errors() -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule("nope")
    assert info.value.field == "schedule"
    assert isinstance(info.value, ValueError)
