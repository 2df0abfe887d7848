"""Recurrence rules: the DST matrix, calendar edges, refused rules, repeat-after.

Each zone's real 2026-2027 transitions are found by scanning `utcoffset`, not hard-coded, and
the expected instants come from a hand model of the DST policy (a wall time in a gap or in a
repeated period is read with the offset in force before the change; elsewhere the wall time
has one reading), independent of zoneinfo's `fold` handling.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from duetime.jobs.cron import parse_schedule
from duetime.tasks import recurrence
from duetime.tasks.model import Task, TaskRuleError
from duetime.tasks.profile import Profile
from duetime.tasks.recurrence import RecurrenceError
from duetime.tasks.series import next_task, parse_repeat_after, start_series

ZONES = (
    "America/New_York",
    "Europe/London",
    "Pacific/Auckland",
    "Australia/Sydney",
    "Africa/Cairo",
    "Australia/Lord_Howe",
)
NY = ZoneInfo("America/New_York")
UTCZ = ZoneInfo("UTC")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def wall(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- transitions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    zone: str
    instant: datetime  # aware UTC: the first instant with the new offset
    before: timedelta
    after: timedelta

    @property
    def shift(self) -> timedelta:
        """Positive: spring forward (a gap); negative: fall back (a repeated period)."""
        return self.after - self.before

    @property
    def wall_before(self) -> datetime:
        """The wall time the old offset reaches at the change (start of gap / end of fold)."""
        return (self.instant + self.before).replace(tzinfo=None)

    @property
    def wall_after(self) -> datetime:
        """The wall time the new offset starts from (end of gap / start of fold)."""
        return (self.instant + self.after).replace(tzinfo=None)

    @property
    def middle(self) -> datetime:
        """A wall time inside the gap or the repeated period."""
        low = min(self.wall_before, self.wall_after)
        return low + abs(self.shift) / 2

    def in_window(self, w: datetime) -> bool:
        low, high = sorted((self.wall_before, self.wall_after))
        return low <= w < high

    def model_instant(self, w: datetime) -> datetime:
        """The instant of wall time `w` (within a day of the change) by the DST policy."""
        if self.in_window(w) or w < min(self.wall_before, self.wall_after):
            offset = self.before  # the gap moves forward; the fold means its first pass
        else:
            offset = self.after
        return (w - offset).replace(tzinfo=UTC)

    def second_pass(self, w: datetime) -> datetime:
        """The later instant of a repeated wall time."""
        assert self.shift < timedelta(0) and self.in_window(w)
        return (w - self.after).replace(tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.zone}@{self.instant:%Y-%m-%dT%H:%MZ}"


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


@cache
def transitions(zone_name: str) -> tuple[Transition, ...]:
    """Every offset change of `zone_name` in 2026-2027, to the second."""
    zone, found = ZoneInfo(zone_name), []
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    while moment.year < 2028:
        later = moment + HOUR
        if _offset(moment, zone) != _offset(later, zone):
            low, high = int(moment.timestamp()), int(later.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(datetime.fromtimestamp(middle, UTC), zone) == _offset(later, zone):
                    high = middle
                else:
                    low = middle
            change = datetime.fromtimestamp(high, UTC)
            found.append(Transition(zone_name, change, _offset(moment, zone), _offset(later, zone)))
        moment = later
    return tuple(found)


ALL = [t for zone in ZONES for t in transitions(zone)]
GAPS = [t for t in ALL if t.shift > timedelta(0)]
FOLDS = [t for t in ALL if t.shift < timedelta(0)]


def test_every_zone_has_two_changes_a_year() -> None:
    for zone in ZONES:
        found = transitions(zone)
        assert len(found) == 4, (zone, found)
        assert sorted(t.shift > timedelta(0) for t in found) == [False, False, True, True]
    lord_howe = transitions("Australia/Lord_Howe")
    assert {abs(t.shift) for t in lord_howe} == {timedelta(minutes=30)}
    cairo_gaps = [t for t in transitions("Africa/Cairo") if t.shift > timedelta(0)]
    assert all(t.wall_before.time() == datetime.min.time() for t in cairo_gaps)


# --- helpers -------------------------------------------------------------------------------


def series(rule: str, start: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
    """The first `count` wall times after the start (occurrence 1)."""
    normalized = recurrence.normalize(rule)
    recurrence.validate(normalized, start, zone)
    return recurrence.upcoming(normalized, start, zone, start, 1, count)


def instants(walls: list[datetime], zone: ZoneInfo) -> list[datetime]:
    return [recurrence.to_instant(w, zone) for w in walls]


def local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def strictly_increasing(values: list[datetime]) -> bool:
    return all(a < b for a, b in pairwise(values))


def model_series(
    t: Transition, minutes: tuple[int, ...], first: datetime, last: datetime
) -> list[datetime]:
    """Hand model of an hourly rule at `minutes` past each hour: every wall time in
    [first, last], read by the DST policy, equal instants merged, in time order."""
    found: set[datetime] = set()
    hour = first.replace(minute=0)
    while hour <= last:
        for minute in minutes:
            w = hour.replace(minute=minute)
            if first <= w <= last:
                found.add(t.model_instant(w))
        hour += HOUR
    return sorted(found)


# --- DST matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize("t", ALL, ids=str)
def test_daily_0900_keeps_its_local_time(t: Transition) -> None:
    zone = ZoneInfo(t.zone)
    day = t.wall_before.date()
    start = datetime.combine(day - 3 * DAY, datetime.min.time()).replace(hour=9)
    walls = series("FREQ=DAILY", start, zone, 6)
    assert walls == [start + n * DAY for n in range(1, 7)]
    found = instants(walls, zone)
    assert [local(i, zone) for i in found] == walls  # 09:00 local, before, on and after
    steps = [b - a for a, b in pairwise([recurrence.to_instant(start, zone), *found])]
    assert sorted(set(steps)) == sorted({DAY, DAY - t.shift})
    assert steps.count(DAY - t.shift) == 1


@pytest.mark.parametrize("t", GAPS, ids=str)
def test_daily_in_the_gap_fires_once_moved_by_the_gap(t: Transition) -> None:
    zone = ZoneInfo(t.zone)
    g = t.middle
    walls = series("FREQ=DAILY", g - 2 * DAY, zone, 4)
    assert walls == [g - DAY, g, g + DAY, g + 2 * DAY]
    found = instants(walls, zone)
    assert strictly_increasing(found)
    assert found[1] == (g - t.before).replace(tzinfo=UTC)
    assert local(found[1], zone) == g + t.shift
    local_days = [local(i, zone).date() for i in found]
    assert local_days == [g.date() - timedelta(1) + timedelta(n) for n in range(4)]
    assert [local(i, zone) for i in (found[0], found[2], found[3])] == [
        walls[0],
        walls[2],
        walls[3],
    ]


@pytest.mark.parametrize("t", FOLDS, ids=str)
def test_daily_in_the_repeated_period_fires_once_at_the_first_pass(t: Transition) -> None:
    zone = ZoneInfo(t.zone)
    f = t.middle
    walls = series("FREQ=DAILY", f - 2 * DAY, zone, 4)
    assert walls == [f - DAY, f, f + DAY, f + 2 * DAY]
    found = instants(walls, zone)
    assert strictly_increasing(found)
    assert found[1] == (f - t.before).replace(tzinfo=UTC)  # the earlier instant
    assert t.second_pass(f) not in found
    assert found[2] - found[1] == DAY - t.shift  # next day: one day plus the repeat
    assert [local(i, zone) for i in found] == walls


@pytest.mark.parametrize("t", ALL, ids=str)
def test_hourly_across_the_change(t: Transition) -> None:
    zone = ZoneInfo(t.zone)
    minute = t.middle.minute
    start = t.wall_before.replace(minute=minute) - 4 * HOUR
    walls = series(f"FREQ=HOURLY;BYMINUTE={minute}", start, zone, 8)
    found = instants(walls, zone)
    assert strictly_increasing(found)
    assert len(set(found)) == len(found)
    last = start + 9 * HOUR
    model = model_series(t, (minute,), start, last)
    assert found == [i for i in model if i > t.model_instant(start)][:8]
    for w, i in zip(walls, found, strict=True):
        expected = w + t.shift if t.shift > timedelta(0) and t.in_window(w) else w
        assert local(i, zone) == expected
    if t.shift < timedelta(0):
        assert (t.middle - t.before).replace(tzinfo=UTC) in found
        assert t.second_pass(t.middle) not in found
    else:
        assert (t.middle - t.before).replace(tzinfo=UTC) in found


@pytest.mark.parametrize("t", ALL, ids=str)
def test_hourly_at_two_minutes_matches_the_model(t: Transition) -> None:
    """Two wall times a gap apart: only walls landing on the *same* instant merge."""
    zone = ZoneInfo(t.zone)
    start = t.wall_before - 3 * HOUR
    walls = series("FREQ=HOURLY;BYMINUTE=20,40", start, zone, 10)
    found = instants(walls, zone)
    assert strictly_increasing(found)
    model = model_series(t, (20, 40), start, start + 7 * HOUR)
    assert found == [i for i in model if i > t.model_instant(start)][:10]


@pytest.mark.parametrize(
    ("zone", "rule", "start", "expected"),
    [
        # New York: 02:00 EST -> 03:00 EDT on 2026-03-08; 02:00 EDT -> 01:00 EST on 11-01.
        ("America/New_York", "FREQ=DAILY", "2026-03-07T02:30", ["03-08T07:30", "03-09T06:30"]),
        ("America/New_York", "FREQ=DAILY", "2026-10-31T01:30", ["11-01T05:30", "11-02T06:30"]),
        (
            "America/New_York",
            "FREQ=HOURLY",
            "2026-03-08T00:00",
            ["03-08T06:00", "03-08T07:00", "03-08T08:00", "03-08T09:00"],
        ),  # 01:00 EST, 02:00 -> 03:00 EDT, (03:00 EDT merged), 04:00 EDT
        (
            "America/New_York",
            "FREQ=HOURLY",
            "2026-10-31T23:00",
            ["11-01T04:00", "11-01T05:00", "11-01T07:00", "11-01T08:00"],
        ),  # 00:00 EDT, 01:00 EDT, (01:00 EST skipped), 02:00 EST
        # Lord Howe: 02:00 -> 02:30 (+11) on 2026-10-04; 02:00 -> 01:30 (+10:30) on 04-05.
        (
            "Australia/Lord_Howe",
            "FREQ=DAILY",
            "2026-10-03T02:15",
            ["10-03T15:45", "10-04T15:15"],
        ),
        (
            "Australia/Lord_Howe",
            "FREQ=DAILY",
            "2026-04-04T01:45",
            ["04-04T14:45", "04-05T15:15"],
        ),
        # Cairo: 2026-04-24 00:00 does not exist (-> 01:00 EEST); 10-29 23:xx repeats.
        ("Africa/Cairo", "FREQ=DAILY", "2026-04-23T00:00", ["04-23T22:00", "04-24T21:00"]),
        ("Africa/Cairo", "FREQ=DAILY", "2026-04-22T00:30", ["04-22T22:30", "04-23T22:30"]),
        ("Africa/Cairo", "FREQ=DAILY", "2026-10-28T23:30", ["10-29T20:30", "10-30T21:30"]),
    ],
)
def test_dst_hand_checked(zone: str, rule: str, start: str, expected: list[str]) -> None:
    walls = series(rule, wall(start), ZoneInfo(zone), len(expected))
    assert instants(walls, ZoneInfo(zone)) == [utc(f"2026-{e}") for e in expected]


def test_lord_howe_hourly_twenty_forty_agrees_with_the_engine_cron() -> None:
    """2026-10-04, Lord Howe jumps 02:00 -> 02:30. 02:20 moves to 02:50 (15:50Z); 02:40
    exists (15:40Z) and is a different instant, so both fire, in time order, as the jobs
    engine's CRON_TZ cron (same DST policy) fires them."""
    zone = ZoneInfo("Australia/Lord_Howe")
    walls = series("FREQ=HOURLY;BYMINUTE=20,40", wall("2026-10-04T01:00"), zone, 5)
    cron = parse_schedule("CRON_TZ=Australia/Lord_Howe 0 20,40 * * * *")
    after, ticks = recurrence.to_instant(wall("2026-10-04T01:00"), zone), []
    for _ in range(5):
        nxt = cron.next_after(after)
        assert nxt is not None
        ticks.append(nxt)
        after = nxt
    assert ticks == [utc(f"2026-10-03T{x}") for x in ("14:50", "15:10", "15:40", "15:50", "16:20")]
    assert instants(walls, zone) == ticks


def test_to_instant_and_to_wall() -> None:
    assert recurrence.to_instant(wall("2026-03-08T02:30"), NY) == utc("2026-03-08T07:30")
    assert recurrence.to_instant(wall("2026-11-01T01:30"), NY) == utc("2026-11-01T05:30")
    assert recurrence.to_wall(utc("2026-11-01T06:30"), NY) == wall("2026-11-01T01:30")
    assert recurrence.to_wall(utc("2026-11-01T06:30"), NY).fold == 0
    assert recurrence.to_instant(wall("2026-07-01T09:00"), NY).tzinfo is UTC


# --- calendar edges ------------------------------------------------------------------------


def days(walls: list[datetime]) -> list[str]:
    return [w.strftime("%Y-%m-%d") for w in walls]


def test_monthly_on_the_31st_skips_short_months() -> None:
    walls = series("FREQ=MONTHLY;BYMONTHDAY=31", wall("2026-01-31T09:00"), UTCZ, 6)
    assert days(walls) == [
        "2026-03-31",
        "2026-05-31",
        "2026-07-31",
        "2026-08-31",
        "2026-10-31",
        "2026-12-31",
    ]
    assert all(w.time() == wall("2026-01-01T09:00").time() for w in walls)


def test_last_day_of_the_month() -> None:
    walls = series("FREQ=MONTHLY;BYMONTHDAY=-1", wall("2027-12-31T18:00"), UTCZ, 4)
    assert days(walls) == ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]
    walls = series("FREQ=MONTHLY;BYMONTHDAY=-1", wall("2027-01-31T18:00"), UTCZ, 2)
    assert days(walls) == ["2027-02-28", "2027-03-31"]


def test_plain_monthly_from_january_31() -> None:
    walls = series("FREQ=MONTHLY", wall("2026-01-31T09:00"), NY, 4)
    assert days(walls) == ["2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31"]


def test_yearly_on_february_29() -> None:
    walls = series("FREQ=YEARLY", wall("2024-02-29T09:00"), NY, 2)
    assert walls == [wall("2028-02-29T09:00"), wall("2032-02-29T09:00")]


def test_count_includes_the_start() -> None:
    rule, start = recurrence.normalize("FREQ=DAILY;COUNT=3"), wall("2026-03-02T09:00")
    recurrence.validate(rule, start, NY)
    walls = recurrence.upcoming(rule, start, NY, start, 1, 10)
    assert walls == [wall("2026-03-03T09:00"), wall("2026-03-04T09:00")]
    assert recurrence.next_occurrence(rule, start, NY, walls[1], 3) is None
    assert recurrence.next_occurrence(rule, start, NY, walls[0], 2) == walls[1]
    one = recurrence.normalize("FREQ=DAILY;COUNT=1")
    recurrence.validate(one, start, NY)
    assert recurrence.next_occurrence(one, start, NY, start, 1) is None


@pytest.mark.parametrize(
    ("until", "last"),
    [
        ("20260305", "2026-03-05T09:00"),  # a date: through the end of that day
        ("20260305T090000", "2026-03-05T09:00"),  # a floating date-time: inclusive
        ("20260305T085959", "2026-03-04T09:00"),
        ("20260305T140000Z", "2026-03-05T09:00"),  # 09:00 EST is 14:00Z: inclusive
        ("20260305T135959Z", "2026-03-04T09:00"),
        ("20260310T130000Z", "2026-03-10T09:00"),  # after the change: 09:00 EDT is 13:00Z
        ("20260310T125959Z", "2026-03-09T09:00"),
    ],
)
def test_until_is_inclusive(until: str, last: str) -> None:
    walls = series(f"FREQ=DAILY;UNTIL={until}", wall("2026-03-01T09:00"), NY, 30)
    assert walls[-1] == wall(last)
    assert walls[0] == wall("2026-03-02T09:00")
    assert len(walls) == (wall(last) - wall("2026-03-01T09:00")).days


@pytest.mark.parametrize("until", ["20260228", "20260301T085959", "20260301T135959Z"])
def test_until_before_the_start_is_refused(until: str) -> None:
    rule = recurrence.normalize(f"FREQ=DAILY;UNTIL={until}")
    with pytest.raises(RecurrenceError, match="before the start"):
        recurrence.validate(rule, wall("2026-03-01T09:00"), NY)


def test_until_on_the_start_is_a_single_occurrence() -> None:
    assert series("FREQ=DAILY;UNTIL=20260301T090000", wall("2026-03-01T09:00"), NY, 5) == []


@pytest.mark.parametrize(
    ("rule", "start", "expected"),
    [
        ("FREQ=DAILY;INTERVAL=2", "2026-03-01T09:00", ["2026-03-03", "2026-03-05", "2026-03-07"]),
        ("FREQ=WEEKLY;INTERVAL=3", "2026-03-02T09:00", ["2026-03-23", "2026-04-13", "2026-05-04"]),
        ("FREQ=MONTHLY;INTERVAL=6", "2026-01-15T09:00", ["2026-07-15", "2027-01-15", "2027-07-15"]),
        (
            "FREQ=WEEKLY;BYDAY=MO,WE",
            "2026-03-02T09:00",  # a Monday
            ["2026-03-04", "2026-03-09", "2026-03-11"],
        ),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
            "2026-03-02T09:00",
            ["2026-03-04", "2026-03-16", "2026-03-18"],
        ),
        ("daily", "2026-03-06T09:00", ["2026-03-07", "2026-03-08", "2026-03-09"]),
        ("weekdays", "2026-03-06T09:00", ["2026-03-09", "2026-03-10", "2026-03-11"]),  # Fri
        ("weekly", "2026-03-04T09:00", ["2026-03-11", "2026-03-18", "2026-03-25"]),
        ("monthly", "2026-03-04T09:00", ["2026-04-04", "2026-05-04", "2026-06-04"]),
        ("yearly", "2026-03-04T09:00", ["2027-03-04", "2028-03-04", "2029-03-04"]),
        ("Weekdays", "2026-03-07T09:00", ["2026-03-09", "2026-03-10", "2026-03-11"]),  # Sat
        (
            "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1",
            "2026-03-01T09:00",
            ["2026-03-30", "2026-04-27", "2026-05-25"],
        ),
    ],
)
def test_rules_and_presets(rule: str, start: str, expected: list[str]) -> None:
    walls = series(rule, wall(start), NY, 3)
    assert days(walls) == expected
    assert all(w.time() == wall(start).time() for w in walls)


def test_presets_normalize() -> None:
    assert recurrence.normalize("daily") == "FREQ=DAILY"
    assert recurrence.normalize(" WEEKDAYS ") == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    assert recurrence.normalize("weekly") == "FREQ=WEEKLY"
    assert recurrence.normalize("monthly") == "FREQ=MONTHLY"
    assert recurrence.normalize("yearly") == "FREQ=YEARLY"
    assert recurrence.normalize("RRULE:freq=daily;interval=2") == "FREQ=DAILY;INTERVAL=2"
    assert recurrence.normalize("FREQ=MINUTELY;INTERVAL=15") == "FREQ=MINUTELY;INTERVAL=15"


def test_a_start_off_the_rule_still_counts() -> None:
    start = wall("2026-03-04T09:00")  # a Wednesday; the rule says Mondays
    assert days(series("FREQ=WEEKLY;BYDAY=MO", start, NY, 2)) == ["2026-03-09", "2026-03-16"]
    assert days(series("FREQ=WEEKLY;BYDAY=MO;COUNT=2", start, NY, 5)) == ["2026-03-09"]
    # BYHOUR off the start's hour: the start at 09:00, the rule at 18:00 (same day next).
    walls = series("FREQ=DAILY;BYHOUR=18", start, NY, 2)
    assert walls == [wall("2026-03-04T18:00"), wall("2026-03-05T18:00")]


def test_every_fifteen_minutes_is_the_limit() -> None:
    walls = series("FREQ=MINUTELY;INTERVAL=15", wall("2026-03-02T09:00"), NY, 3)
    assert walls == [wall("2026-03-02T09:15"), wall("2026-03-02T09:30"), wall("2026-03-02T09:45")]


# --- refused rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("FREQ", "not NAME=VALUE"),
        ("FREQ=DAILY;;", "not NAME=VALUE"),
        ("FREQ=DAILY;INTERVAL=", "not NAME=VALUE"),
        ("FREQ=DAILY;COLOR=RED", "COLOR is not an RRULE part"),
        ("FREQ=DAILY;FREQ=WEEKLY", "given twice"),
        ("INTERVAL=2", "needs FREQ"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20261231", "both COUNT and UNTIL"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a whole number of at least 1"),
        ("FREQ=DAILY;COUNT=-1", "COUNT must be"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 to 1000"),
        ("FREQ=DAILY;INTERVAL=1001", "INTERVAL must be"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL must be a date"),
        ("FREQ=DAILY;UNTIL=20261340", "not a real date"),
        ("FREQ=FORTNIGHTLY", "not a valid RRULE"),
        ("FREQ=DAILY;BYDAY=XX", "not a valid RRULE"),
        ("FREQ=SECONDLY", "by the second"),
        ("FREQ=DAILY;BYSECOND=30", "by the second"),
        ("FREQ=MINUTELY", "more often than every 15 minutes"),
        ("FREQ=MINUTELY;INTERVAL=14", "more often than every 15 minutes"),
        ("FREQ=HOURLY;BYMINUTE=0,5", "more often than every 15 minutes"),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0,10", "more often than every 15 minutes"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "day that none of its months has"),
        ("FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31", "day that none of its months has"),
        ("FREQ=MONTHLY;BYMONTHDAY=X", "take numbers"),
        ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS needs FREQ=MONTHLY or YEARLY with BYDAY"),
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS needs"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=5", "BYSETPOS must be 1 to 4"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0", "BYSETPOS must be"),
        ("FREQ=MONTHLY;BYDAY=MO;BYMONTHDAY=1;BYSETPOS=1", "goes with BYDAY"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=first", "BYSETPOS takes numbers"),
        ("FREQ=WEEKLY;BYYEARDAY=1", "BYYEARDAY needs FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO needs FREQ=YEARLY"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "never occurs within 10 years"),
        ("FREQ=YEARLY;BYYEARDAY=366;BYDAY=MO", "never occurs within 10 years"),
        ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "never occurs within 10 years"),
        ("FREQ=MINUTELY;INTERVAL=15;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "never occurs"),
        ("FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO;BYMONTH=2", "never occurs"),
    ],
)
def test_bad_rules_are_refused_quickly(rule: str, message: str) -> None:
    began = clock.monotonic()
    with pytest.raises(RecurrenceError, match=message):
        normalized = recurrence.normalize(rule)
        recurrence.validate(normalized, wall("2026-03-02T09:00"), NY)
    assert clock.monotonic() - began < 2.0


def test_recurrence_error_is_a_value_error() -> None:
    assert issubclass(RecurrenceError, ValueError)


# --- repeat after completion ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "every", "date_only"),
    [
        ("P1D", timedelta(days=1), True),
        ("P3D", timedelta(days=3), True),
        ("P2W", timedelta(days=14), True),
        ("PT4H", timedelta(hours=4), False),
        ("PT15M", timedelta(minutes=15), False),
        ("P1DT1H", timedelta(hours=25), False),
        ("PT87840H", timedelta(days=3660), False),
        ("P3660D", timedelta(days=3660), True),
    ],
)
def test_parse_repeat_after(text: str, every: timedelta, date_only: bool) -> None:
    parsed = parse_repeat_after(text)
    assert (parsed.text, parsed.every, parsed.date_only) == (text, every, date_only)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P0D", "at least one day"),
        ("P0W", "at least one day"),
        ("PT0S", "between 15 minutes"),
        ("PT14M", "between 15 minutes"),
        ("PT87841H", "10 years"),
        ("P10000D", "10 years"),
        ("P3661D", "10 years"),  # the stated bound holds for whole days too
        ("P9999W", "10 years"),  # 191 years
        ("P1Y", "no fixed length"),
        ("P1M", "no fixed length"),
        ("-P1D", "invalid ISO 8601 duration"),
        ("", "invalid ISO 8601 duration"),
        ("daily", "invalid ISO 8601 duration"),
    ],
)
def test_parse_repeat_after_refuses(text: str, message: str) -> None:
    with pytest.raises(TaskRuleError, match=message):
        parse_repeat_after(text)


def test_whole_days_keep_the_time_of_day_across_dst() -> None:
    nine = wall("2026-03-01T09:00")
    # Done Friday 2026-03-06 18:00 EST; three days later is Monday 09:00 EDT.
    due = recurrence.after_completion(timedelta(days=3), True, utc("2026-03-06T23:00"), nine, NY)
    assert due == (wall("2026-03-09T09:00"), utc("2026-03-09T13:00"))
    # The day is the local day it was done (22:00 EST on 03-06 is 03:00Z on 03-07).
    due = recurrence.after_completion(timedelta(days=1), True, utc("2026-03-07T03:00"), nine, NY)
    assert due[0] == wall("2026-03-07T09:00")
    # Back across the fall change: still 09:00, now EST.
    due = recurrence.after_completion(timedelta(days=7), True, utc("2026-10-30T12:00"), nine, NY)
    assert due[1] == utc("2026-11-06T14:00")


def test_a_timed_duration_counts_from_completion_across_spring_forward() -> None:
    done = utc("2026-03-08T05:30")  # 00:30 EST
    due = recurrence.after_completion(timedelta(hours=4), False, done, wall("2026-03-01"), NY)
    assert due == (wall("2026-03-08T05:30"), done + timedelta(hours=4))  # 05:30 EDT


def test_a_timed_duration_counts_from_completion_across_fall_back() -> None:
    """Done 2026-11-01 02:15Z (22:15 EDT on 10-31) + 4 h = 06:15Z, which is 01:15 EST, the
    second pass of 01:15. The due instant must be exactly 4 h after completion."""
    done = utc("2026-11-01T02:15")
    due = recurrence.after_completion(timedelta(hours=4), False, done, wall("2026-03-01"), NY)
    assert due == (wall("2026-11-01T01:15"), done + timedelta(hours=4))


def _first_task(start: datetime, zone: str, created: datetime) -> Task:
    due = recurrence.to_instant(start, ZoneInfo(zone))
    return Task(
        id="t1",
        user_id="u1",
        title="water the plants",
        created_at=created,
        updated_at=created,
        due_at=due,
        due_local=start,
    )


def test_repeat_after_never_comes_due_before_completion_in_the_repeated_hour() -> None:
    """PT15M completed at 01:50 EDT on 2026-11-01 (05:50Z) is due at 06:05Z (01:05 EST)."""
    profile = Profile("u1", "America/New_York")
    created = utc("2026-10-30T12:00")
    task = _first_task(wall("2026-10-31T09:00"), "America/New_York", created)
    series_ = start_series(task, None, "PT15M", None, profile, created)
    now = utc("2026-11-01T05:50")
    following = next_task(series_, task, profile, now)
    assert following is not None
    assert following.due_at == now + timedelta(minutes=15)
    assert following.due_at > now


def test_next_task_passes_missed_occurrences_quickly() -> None:
    """An hourly series whose task stayed open for 45 days: the next occurrence is the first
    in the future, found in well under a second (each lookup must not rescan the series)."""
    profile = Profile("u1", "America/New_York")
    created = utc("2026-01-04T12:00")
    task = _first_task(wall("2026-01-05T09:00"), "America/New_York", created)
    series_ = start_series(task, "FREQ=HOURLY", None, None, profile, created)
    now = utc("2026-02-19T14:07")  # 09:07 EST
    began = clock.monotonic()
    following = next_task(series_, task, profile, now)
    elapsed = clock.monotonic() - began
    assert following is not None
    assert following.due_at == utc("2026-02-19T15:00")
    assert following.due_local == wall("2026-02-19T10:00")
    assert following.occurrence == 45 * 24 + 2
    assert elapsed < 2.0


def test_next_task_by_rule_across_dst() -> None:
    profile = Profile("u1", "Europe/London")
    created = utc("2026-03-20T12:00")
    task = _first_task(wall("2026-03-27T09:00"), "Europe/London", created)
    series_ = start_series(task, recurrence.normalize("daily"), None, None, profile, created)
    assert series_.start_local == wall("2026-03-27T09:00")
    second = next_task(series_, task, profile, utc("2026-03-27T09:05"))
    assert second is not None and second.due_at == utc("2026-03-28T09:00")  # GMT
    third = next_task(series_, second, profile, utc("2026-03-28T09:05"))
    assert third is not None and third.due_at == utc("2026-03-29T08:00")  # BST
    assert (second.occurrence, third.occurrence) == (2, 3)
    assert third.due_local == wall("2026-03-29T09:00")
