"""The jobs engine's `CRON_TZ=` cron across every 2026-2027 DST change of six zones.

Transitions are found by scanning `utcoffset`; expected instants come from a hand model of
the DST policy in `duetime.jobs.cron`'s docstring (a wall time in a gap or a repeated period
is read with the offset in force before the change), not from zoneinfo's `fold`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from duetime.jobs.cron import CronSchedule, parse_schedule

ZONES = (
    "America/New_York",
    "Europe/London",
    "Pacific/Auckland",
    "Australia/Sydney",
    "Africa/Cairo",
    "Australia/Lord_Howe",
)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Transition:
    zone: str
    instant: datetime  # aware UTC: the first instant with the new offset
    before: timedelta
    after: timedelta

    @property
    def shift(self) -> timedelta:
        return self.after - self.before

    @property
    def wall_before(self) -> datetime:
        return (self.instant + self.before).replace(tzinfo=None)

    @property
    def wall_after(self) -> datetime:
        return (self.instant + self.after).replace(tzinfo=None)

    @property
    def middle(self) -> datetime:
        """A wall time inside the gap or the repeated period."""
        return min(self.wall_before, self.wall_after) + abs(self.shift) / 2

    def in_window(self, w: datetime) -> bool:
        low, high = sorted((self.wall_before, self.wall_after))
        return low <= w < high

    def model_instant(self, w: datetime) -> datetime:
        if self.in_window(w) or w < min(self.wall_before, self.wall_after):
            offset = self.before
        else:
            offset = self.after
        return (w - offset).replace(tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.zone}@{self.instant:%Y-%m-%dT%H:%MZ}"


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


@cache
def transitions(zone_name: str) -> tuple[Transition, ...]:
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


def ticks(expr: str, after: datetime, count: int) -> list[datetime]:
    schedule, found = parse_schedule(expr), []
    assert isinstance(schedule, CronSchedule)
    for _ in range(count):
        nxt = schedule.next_after(after)
        assert nxt is not None
        found.append(nxt)
        after = nxt
    return found


def local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def strictly_increasing(values: list[datetime]) -> bool:
    return all(a < b for a, b in pairwise(values))


def cron_at(w: datetime, rest: str = "* * *") -> str:
    return f"{w.second} {w.minute} {w.hour} {rest}"


def test_matrix_covers_two_changes_a_year_per_zone() -> None:
    for zone in ZONES:
        assert len(transitions(zone)) == 4, zone
    assert len(GAPS) == len(FOLDS) == 12


@pytest.mark.parametrize("t", ALL, ids=str)
def test_daily_0900_keeps_its_local_time(t: Transition) -> None:
    zone = ZoneInfo(t.zone)
    first_day = t.wall_before.date() - 3 * DAY
    after = datetime.combine(first_day, datetime.min.time(), zone).astimezone(UTC)
    found = ticks(f"CRON_TZ={t.zone} 0 0 9 * * *", after, 6)
    assert [local(i, zone) for i in found] == [
        datetime.combine(first_day + n * DAY, datetime.min.time()).replace(hour=9) for n in range(6)
    ]
    steps = [b - a for a, b in pairwise(found)]
    assert steps.count(DAY - t.shift) == 1
    assert set(steps) == {DAY, DAY - t.shift}


@pytest.mark.parametrize("t", GAPS, ids=str)
def test_daily_in_the_gap_fires_once_moved_by_the_gap(t: Transition) -> None:
    zone = ZoneInfo(t.zone)
    g = t.middle
    after = t.model_instant(g - 2 * DAY) - timedelta(minutes=1)
    found = ticks(f"CRON_TZ={t.zone} {cron_at(g)}", after, 4)
    assert found[2] == (g - t.before).replace(tzinfo=UTC)
    assert local(found[2], zone) == g + t.shift
    assert [local(i, zone) for i in (found[0], found[1], found[3])] == [
        g - 2 * DAY,
        g - DAY,
        g + DAY,
    ]
    dates = [local(i, zone).date() for i in found]
    assert len(set(dates)) == 4  # once a day, once on the day of the change


@pytest.mark.parametrize("t", GAPS, ids=str)
def test_a_tick_moved_by_the_gap_is_still_ahead_just_after_the_change(t: Transition) -> None:
    g = t.middle
    moved = (g - t.before).replace(tzinfo=UTC)
    assert ticks(f"CRON_TZ={t.zone} {cron_at(g)}", t.instant, 1) == [moved]
    assert ticks(f"CRON_TZ={t.zone} {cron_at(g)}", moved - timedelta(seconds=1), 1) == [moved]


@pytest.mark.parametrize("t", FOLDS, ids=str)
def test_daily_in_the_repeated_period_fires_once_at_the_first_pass(t: Transition) -> None:
    zone = ZoneInfo(t.zone)
    f = t.middle
    after = t.model_instant(f - 2 * DAY) - timedelta(minutes=1)
    found = ticks(f"CRON_TZ={t.zone} {cron_at(f)}", after, 4)
    assert [local(i, zone) for i in found] == [f - 2 * DAY, f - DAY, f, f + DAY]
    assert found[2] == (f - t.before).replace(tzinfo=UTC)
    second_pass = (f - t.after).replace(tzinfo=UTC)
    assert second_pass not in found
    assert found[3] - found[2] == DAY - t.shift
    # Asked from inside the repeated period, after the first pass: the next day.
    assert ticks(f"CRON_TZ={t.zone} {cron_at(f)}", found[2], 1) == [found[3]]
    assert ticks(f"CRON_TZ={t.zone} {cron_at(f)}", second_pass - HOUR / 4, 1) == [found[3]]


@pytest.mark.parametrize("t", ALL, ids=str)
@pytest.mark.parametrize("minutes", [None, (20, 40), (0, 15, 30, 45)], ids=str)
def test_hourly_across_the_change(t: Transition, minutes: tuple[int, ...] | None) -> None:
    zone = ZoneInfo(t.zone)
    minutes = minutes or (t.middle.minute,)
    start = t.wall_before.replace(minute=0) - 4 * HOUR
    after = t.model_instant(start) - timedelta(seconds=1)
    count = 8 * len(minutes)
    listed = ",".join(map(str, minutes))
    found = ticks(f"CRON_TZ={t.zone} 0 {listed} * * * *", after, count)
    assert strictly_increasing(found)
    model: set[datetime] = set()
    for hour in range(12):
        for minute in minutes:
            model.add(t.model_instant(start + hour * HOUR + timedelta(minutes=minute)))
    assert found == sorted(model)[:count]
    shift = max(t.shift, timedelta(0))
    for i in found:  # every tick is on one of the minutes, or moved there by the gap
        assert {local(i, zone).minute, (local(i, zone) - shift).minute} & set(minutes)
    if t.shift < timedelta(0):
        for w in (t.middle, t.wall_after):
            w = w.replace(minute=minutes[0])
            if t.in_window(w):
                assert (w - t.before).replace(tzinfo=UTC) in found
                assert (w - t.after).replace(tzinfo=UTC) not in found  # no second pass


@pytest.mark.parametrize(
    ("zone", "cron", "after", "expected"),
    [
        ("America/New_York", "0 30 2 * * *", "2026-03-07T12:00", ["2026-03-08T07:30"]),
        ("America/New_York", "0 30 1 * * *", "2026-10-31T12:00", ["2026-11-01T05:30"]),
        ("America/New_York", "0 0 9 * * *", "2026-03-07T15:00", ["2026-03-08T13:00"]),
        (
            "America/New_York",
            "0 0 * * * *",
            "2026-11-01T04:30",
            ["2026-11-01T05:00", "2026-11-01T07:00"],
        ),
        ("Australia/Lord_Howe", "0 15 2 * * *", "2026-10-03T12:00", ["2026-10-03T15:45"]),
        ("Australia/Lord_Howe", "0 45 1 * * *", "2026-04-04T12:00", ["2026-04-04T14:45"]),
        (
            "Australia/Lord_Howe",
            "0 20,40 * * * *",
            "2026-10-03T15:00",
            ["2026-10-03T15:10", "2026-10-03T15:40", "2026-10-03T15:50", "2026-10-03T16:20"],
        ),
        ("Africa/Cairo", "@daily", "2026-04-23T12:00", ["2026-04-23T22:00"]),
        ("Africa/Cairo", "0 0 0 * * *", "2026-04-23T22:00", ["2026-04-24T21:00"]),
        ("Africa/Cairo", "0 30 23 * * *", "2026-10-29T12:00", ["2026-10-29T20:30"]),
        ("Europe/London", "0 30 1 * * *", "2026-03-28T12:00", ["2026-03-29T01:30"]),
        ("Pacific/Auckland", "0 30 2 * * *", "2026-09-26T00:00", ["2026-09-26T14:30"]),
        ("Australia/Sydney", "0 30 2 * * *", "2026-04-04T00:00", ["2026-04-04T15:30"]),
    ],
)
def test_hand_checked(zone: str, cron: str, after: str, expected: list[str]) -> None:
    assert ticks(f"CRON_TZ={zone} {cron}", utc(after), len(expected)) == [utc(e) for e in expected]
