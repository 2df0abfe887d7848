"""Schedule expressions, as Dapr's `schedule` field takes them, and their next fire times.

Grammar (dapr/kit `cron`, a robfig/cron fork, as configured by go-etcd-cron v0.12.7):

- six cron fields, seconds first: `second minute hour day-of-month month day-of-week`, each
  a comma list of `*`, `?`, `n`, `a-b`, `*/n`, `a-b/n` or `a/n` (= `a-max/n`); months JAN-DEC
  and days SUN-SAT by name, any case; day-of-week is 0-6 (7 is rejected, as in Dapr);
- descriptors `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight` `@hourly`, and
  `@every <Go duration>` (sub-second works);
- an optional `CRON_TZ=<IANA zone> ` or `TZ=<IANA zone> ` prefix; rejected before `@every`
  (Dapr rejects it too). Without a prefix cron runs in UTC.

Day of month and day of week combine as in robfig: when either field contains an unstepped
`*` or `?`, a day must match both; otherwise a day matches if it matches either.

Deliberate differences from Dapr: malformed syntax Dapr tolerates (empty list items, `*-5`,
`+5`, an empty zone name) is rejected; a cron that can never fire (`0 0 0 30 2 *`) is rejected
when parsed, where Dapr accepts it and fires it at once; `@every` needs a positive duration
of at least a microsecond, where Dapr accepts zero and negative ones.

Time zones: cron fields are matched against local wall time in the zone, and each matching
wall time fires once:

- a wall time skipped by a spring-forward gap fires once, moved forward by the gap (02:30 on
  the day New York jumps from 02:00 to 03:00 fires at 03:30 EDT);
- a wall time repeated by a fall-back fires once, at its first occurrence, so the repeated
  hour of an hourly or every-minute cron is not fired a second time;
- two wall times that land on the same instant (02:30 moved to 03:30, and 03:30 itself) fire
  once.

This is Python's `fold=0` reading of a wall time. `@every` is elapsed time, unaffected by DST.
The search assumes a zone changes its offset at most once within 24 hours, as tzdata zones do
in practice (checked against a brute-force model for every zone's 1990-2030 transitions).
"""

from __future__ import annotations

import calendar
import json
import re
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from duetime import timefmt

__all__ = ["CronSchedule", "EverySchedule", "Schedule", "ScheduleError", "parse_schedule"]

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_MIDNIGHT = (0, 0, 0)
_SEARCH_YEARS = 10  # longest wait of a valid cron is Feb 29 across a skipped leap year: 8
_FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_ELEMENT = re.compile(
    r"(?:(?P<star>[*?])|(?P<lo>[0-9]+|[A-Za-z]+)(?:-(?P<hi>[0-9]+|[A-Za-z]+))?)"
    r"(?:/(?P<step>[0-9]+))?"
)


class ScheduleError(ValueError):
    """A job's schedule fields are invalid. The message names the field and says why.

    Messages are shown to API users. `field` is the Dapr wire name of the offending field
    (`schedule`, `dueTime`, `ttl`, `repeats`, `failurePolicy`, `name`) when known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


_Fail = Callable[[str], ScheduleError]


class Schedule(ABC):
    """A parsed `schedule` expression."""

    expression: str

    @abstractmethod
    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after` (aware), as aware UTC; None if none."""


@dataclass(frozen=True)
class EverySchedule(Schedule):
    """`@every <duration>`: fires every `interval` of elapsed time."""

    expression: str
    interval: timedelta

    def next_after(self, after: datetime) -> datetime | None:
        try:
            return _utc(after) + self.interval
        except OverflowError:
            return None


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """Six cron fields, matched on wall time in `zone`. Value tuples are sorted."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday
    day_and: bool  # robfig: when a day field has an unstepped * or ?, both day fields must match
    zone: tzinfo = UTC

    def next_after(self, after: datetime) -> datetime | None:
        after = _utc(after)
        try:
            if self.zone is not UTC:
                return self._next_in_zone(after)
            wall = self._first_match(_floor_second(after.replace(tzinfo=None)) + _SECOND)
            return None if wall is None else wall.replace(tzinfo=UTC)
        except OverflowError:  # the search ran into year 1 or 9999
            return None

    def _next_in_zone(self, after: datetime) -> datetime | None:
        zone = self.zone
        # A wall time just skipped by a spring-forward may still map after `after`, so the
        # search starts from `after`'s wall time under the smaller of today's and
        # yesterday's offsets.
        offset = min(_offset(after, zone), _offset(after - _DAY, zone))
        best: datetime | None = None
        wall = self._first_match(_floor_second((after + offset).replace(tzinfo=None)))
        while wall is not None:
            first_offset = _wall_offset(wall, zone, fold=0)
            second_offset = _wall_offset(wall, zone, fold=1)
            instant = (wall - first_offset).replace(tzinfo=UTC)
            in_gap = first_offset < second_offset
            if instant > after:
                if best is None or instant < best:
                    best = instant
                if not in_gap:
                    return best
                # Later walls in this gap land later still; only walls after it can be earlier.
                change = _transition(zone, instant - (second_offset - first_offset), instant)
                resume = (change + second_offset).replace(tzinfo=None)
            elif first_offset > second_offset and after >= (
                change := _transition(zone, instant, (wall - second_offset).replace(tzinfo=UTC))
            ):
                resume = (change + first_offset).replace(tzinfo=None)  # past the repeated hour
            else:
                resume = max(
                    wall + _SECOND, _floor_second((after + first_offset).replace(tzinfo=None))
                )
            wall = self._first_match(resume)
        return best

    def _first_match(self, lo: datetime) -> datetime | None:
        """The first naive wall time at or after `lo` that matches every field."""
        year, month, day, start = lo.year, lo.month, lo.day, (lo.hour, lo.minute, lo.second)
        last_year = min(lo.year + _SEARCH_YEARS, MAXYEAR)
        while year <= last_year:
            if month > 12:
                year, month, day, start = year + 1, 1, 1, _MIDNIGHT
                continue
            index = bisect_left(self.months, month)
            if index == len(self.months):
                month = 13
                continue
            if self.months[index] != month:
                month, day, start = self.months[index], 1, _MIDNIGHT
            match_day = self._first_day(year, month, day)
            if match_day is None:
                month, day, start = month + 1, 1, _MIDNIGHT
                continue
            if match_day != day:
                day, start = match_day, _MIDNIGHT
            clock = self._first_time(start)
            if clock is None:
                day, start = day + 1, _MIDNIGHT
                continue
            return datetime(year, month, day, *clock)
        return None

    def _first_day(self, year: int, month: int, day: int) -> int | None:
        first_weekday, length = calendar.monthrange(year, month)  # Monday = 0
        for candidate in range(day, length + 1):
            dom = candidate in self.days
            dow = (first_weekday + candidate) % 7 in self.weekdays  # Sunday = 0
            if (dom and dow) if self.day_and else (dom or dow):
                return candidate
        return None

    def _first_time(self, start: tuple[int, int, int]) -> tuple[int, int, int] | None:
        for hour in self.hours[bisect_left(self.hours, start[0]) :]:
            minute_from = start[1] if hour == start[0] else 0
            for minute in self.minutes[bisect_left(self.minutes, minute_from) :]:
                second_from = start[2] if (hour, minute) == start[:2] else 0
                index = bisect_left(self.seconds, second_from)
                if index < len(self.seconds):
                    return hour, minute, self.seconds[index]
        return None


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def _floor_second(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)


def _offset(instant: datetime, zone: tzinfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _wall_offset(wall: datetime, zone: tzinfo, *, fold: int) -> timedelta:
    offset = wall.replace(tzinfo=zone, fold=fold).utcoffset()
    assert offset is not None
    return offset


def _transition(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """The instant in (before, after] where the offset changes to `after`'s (whole seconds)."""
    target = _offset(after, zone)
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(datetime.fromtimestamp(middle, UTC), zone) == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


@lru_cache(maxsize=1024)
def parse_schedule(expr: str) -> Schedule:
    """Parse a Dapr `schedule` expression (see the module docstring). Memoised.

    Raises `ScheduleError` with a message of the form `schedule "<expr>": <why>`.
    """

    def fail(reason: str) -> ScheduleError:
        return ScheduleError(
            f"schedule {json.dumps(expr, ensure_ascii=False)}: {reason}", field="schedule"
        )

    spec: str = expr
    zone: tzinfo = UTC
    if spec.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, rest = spec.partition("=")
        name_and_rest = re.match(r"(\S*)\s+(.*)", rest, re.DOTALL)
        if name_and_rest is None or not name_and_rest.group(2).strip():
            raise fail(f"the {prefix}= prefix must be followed by a space and a schedule")
        zone = _load_zone(name_and_rest.group(1), prefix, fail)
        spec = name_and_rest.group(2).strip()
        if spec.startswith("@every "):
            raise fail(f"{prefix}= cannot be used with @every, which counts elapsed time")
    if not spec:
        raise fail("it is empty; expected six cron fields or a descriptor such as @daily")
    if spec.startswith("@every "):
        return _parse_every(expr, spec.removeprefix("@every "), fail)
    if spec.startswith("@"):
        if spec not in _DESCRIPTORS:
            raise fail(
                "unknown descriptor; expected @every <duration>, @yearly, @annually, "
                "@monthly, @weekly, @daily, @midnight or @hourly"
            )
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 6:
        raise fail(
            "cron needs 6 fields (second minute hour day-of-month month day-of-week), "
            f"got {len(fields)}"
        )
    parsed = [_parse_field(text, i, fail) for i, text in enumerate(fields)]
    (seconds, _), (minutes, _), (hours, _), (days, dom_star), (months, _), (weekdays, dow_star) = (
        parsed
    )
    day_and = dom_star or dow_star
    if dow_star and not any(min(days) <= _longest_month(m) for m in months):
        raise fail("it can never fire: none of its months has the day of month it names")
    return CronSchedule(expr, seconds, minutes, hours, days, months, weekdays, day_and, zone)


def _parse_every(expr: str, duration: str, fail: _Fail) -> EverySchedule:
    try:
        interval = timefmt.parse_go_duration(duration)
    except ValueError as exc:
        raise fail(f"@every needs a Go duration: {exc}") from None
    if interval <= timedelta(0):
        raise fail("@every needs a positive duration of at least 1us")
    return EverySchedule(expr, interval)


def _load_zone(name: str, prefix: str, fail: _Fail) -> tzinfo:
    if not name:
        raise fail(f"the {prefix}= prefix needs an IANA time zone name such as Europe/London")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise fail(
            f"unknown time zone {json.dumps(name)} in {prefix}=; expected an IANA "
            "name such as America/New_York"
        ) from None


def _parse_field(text: str, index: int, fail: _Fail) -> tuple[tuple[int, ...], bool]:
    """The sorted values of one cron field, and whether it holds an unstepped `*` or `?`."""
    name = _FIELD_NAMES[index]
    low, high = _BOUNDS[index]
    names = _MONTH_NAMES if index == 4 else _DAY_NAMES if index == 5 else {}

    def bad(reason: str) -> ScheduleError:
        return fail(f"{name} field {json.dumps(text)}: {reason}")

    def value(token: str) -> int:
        number = names.get(token.lower()) if not token.isdigit() else int(token)
        if number is None:
            raise bad(
                f"{json.dumps(token)} is not a number"
                + (" or a name" if names else "")
                + f" ({low}-{high})"
            )
        if not low <= number <= high:
            hint = "; use 0 or SUN for Sunday" if index == 5 and number == 7 else ""
            raise bad(f"{number} is outside {low}-{high}{hint}")
        return number

    values: set[int] = set()
    star = False
    for item in text.split(","):
        match = _ELEMENT.fullmatch(item)
        if match is None:
            raise bad(f"cannot read {json.dumps(item)}; expected *, n, a-b, */n, a-b/n or a/n")
        step = int(match["step"]) if match["step"] is not None else 1
        if step == 0:
            raise bad("a step must be at least 1")
        if match["star"]:
            start, end = low, high
            star = star or step == 1
        else:
            start = value(match["lo"])
            end = value(match["hi"]) if match["hi"] else high if match["step"] else start
            if start > end:
                raise bad(f"range {item} runs backwards")
        values.update(range(start, end + 1, step))
    return tuple(sorted(values)), star


def _longest_month(month: int) -> int:
    return calendar.monthrange(2024, month)[1]  # 2024 is a leap year: February has 29
