"""Recurrence: RFC 5545 rules and presets, evaluated on local wall time in an IANA zone.

Pure functions, no I/O. A series starts at its first occurrence's wall time (the RRULE's
DTSTART). That first occurrence always counts, even when it does not match the rule, and
`COUNT` includes it, as RFC 5545 says. Later occurrences are the rule's instances after it.

DST policy (the same as the jobs engine's `CRON_TZ` cron):
- a wall time that does not exist (spring forward) moves forward by the gap: 02:30 on the
  day New York jumps from 02:00 to 03:00 is 03:30 EDT;
- a wall time that happens twice (fall back) means its first occurrence, once;
- two wall times that land on the same instant give one occurrence.
So a daily 09:00 stays 09:00 local across DST changes, and occurrences strictly increase.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

PRESETS = {
    "daily": "FREQ=DAILY",
    "weekdays": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    "weekly": "FREQ=WEEKLY",
    "monthly": "FREQ=MONTHLY",
    "yearly": "FREQ=YEARLY",
}
MIN_GAP = timedelta(minutes=15)
"""Rules that repeat more often than this are refused: a reminder tool is not a ticker."""
HORIZON_YEARS = 10
"""A rule must occur again within this many years of its start (refuses `BYMONTHDAY=30` in
February, which would otherwise be searched until the year 9999)."""
_CHECKED = 200  # instances examined for the minimum gap
_PARTS = {
    "FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY",
    "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST",
}  # fmt: skip
_SETTLE = timedelta(days=1)  # more than any DST shift
_UNTIL = re.compile(r"^\d{8}(T\d{6}Z?)?$")


class RecurrenceError(ValueError):
    """A rule that is malformed, never occurs, or repeats absurdly often."""


def normalize(text: str) -> str:
    """The canonical RRULE text for a rule or a preset name; raises `RecurrenceError`."""
    raw = text.strip()
    if raw.lower() in PRESETS:
        return PRESETS[raw.lower()]
    if raw.upper().startswith("RRULE:"):
        raw = raw[6:]
    if not raw:
        raise RecurrenceError("recurrence is empty: give an RRULE like FREQ=DAILY or a preset")
    parts: dict[str, str] = {}
    for item in raw.split(";"):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep or not value.strip():
            raise RecurrenceError(f"recurrence part {item!r} is not NAME=VALUE")
        if key not in _PARTS:
            raise RecurrenceError(f"recurrence part {key} is not an RRULE part")
        if key in parts:
            raise RecurrenceError(f"recurrence part {key} is given twice")
        parts[key] = value.strip().upper()
    if "FREQ" not in parts:
        hint = ", ".join(PRESETS)
        raise RecurrenceError(f"recurrence needs FREQ=…, or one of the presets: {hint}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise RecurrenceError("recurrence cannot have both COUNT and UNTIL")
    if "COUNT" in parts and (not parts["COUNT"].isdigit() or int(parts["COUNT"]) < 1):
        raise RecurrenceError("recurrence COUNT must be a whole number of at least 1")
    if "UNTIL" in parts and not _UNTIL.match(parts["UNTIL"]):
        raise RecurrenceError(
            "recurrence UNTIL must be a date (20261231) or a date-time (20261231T235959Z)"
        )
    if "INTERVAL" in parts and not (
        parts["INTERVAL"].isdigit() and 1 <= int(parts["INTERVAL"]) <= 1000
    ):
        raise RecurrenceError("recurrence INTERVAL must be a whole number from 1 to 1000")
    _check_month_days(parts)
    _check_restrictions(parts)
    if parts["FREQ"] == "SECONDLY" or parts.get("BYSECOND", "0") not in ("0", "00"):
        raise RecurrenceError("recurrence cannot repeat by the second")
    rule = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        rrulestr(_without_until(rule), dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RecurrenceError(f"recurrence {text!r} is not a valid RRULE: {exc}") from None
    return rule


def validate(rule: str, start: datetime, zone: ZoneInfo) -> None:
    """Check a normalized rule for a series starting at wall time `start` (naive): UNTIL not
    before the start, some instance within `HORIZON_YEARS` unless the rule ends sooner, and
    no two of the rule's instances closer than `MIN_GAP`."""
    until = _until(rule, zone)
    if until is not None and until < start:
        raise RecurrenceError(f"recurrence UNTIL {until:%Y-%m-%d %H:%M} is before the start")
    horizon = _years_later(start, HORIZON_YEARS)
    previous: datetime | None = None
    seen = 0
    for wall in _walls(rule, start, zone, stop=horizon):  # wall time: DST shifts don't count
        if previous is not None and wall - previous < MIN_GAP:
            minutes = MIN_GAP // timedelta(minutes=1)
            raise RecurrenceError(f"recurrence repeats more often than every {minutes} minutes")
        previous, seen = wall, seen + 1
        if seen >= _CHECKED:
            break
    ends_sooner = _count(rule) == 1 or (until is not None and until < horizon)
    if not seen and not ends_sooner:
        raise RecurrenceError(f"recurrence never occurs within {HORIZON_YEARS} years of the start")


def following(
    rule: str, start: datetime, zone: ZoneInfo, current: datetime, index: int
) -> Iterator[tuple[datetime, int]]:
    """The occurrences after occurrence `index` (at wall time `current`) of the series that
    starts at `start`, as (wall time, index), in time order, until COUNT or UNTIL ends it.
    One pass over the rule, however many are taken."""
    count = _count(rule)
    after = _instant(current, zone)
    for wall, instant in _instances(rule, start, zone):
        if count is not None and index >= count:
            return
        if instant > after:
            index += 1
            yield wall, index


def next_occurrence(
    rule: str, start: datetime, zone: ZoneInfo, current: datetime, index: int
) -> datetime | None:
    """The wall time (naive) of occurrence `index + 1` of the series that starts at `start`,
    after occurrence `index` at wall time `current`; None when the series has ended."""
    for wall, _ in following(rule, start, zone, current, index):
        return wall
    return None


def upcoming(
    rule: str, start: datetime, zone: ZoneInfo, current: datetime, index: int, limit: int
) -> list[datetime]:
    """Up to `limit` wall times after occurrence `index` (at `current`), in order."""
    return [wall for wall, _ in islice(following(rule, start, zone, current, index), limit)]


def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Aware UTC for a naive wall time in `zone`, by the DST policy above."""
    return _instant(wall, zone)


def to_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall time of an aware instant in `zone`."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def after_completion(
    every: timedelta, date_only: bool, done_at: datetime, wall: datetime, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """(wall time, instant) of the next due time of a "repeat after completion" task done at
    `done_at`: for a whole number of days, that many days after the day it was done, at the
    series' time of day (`wall`); otherwise exactly `every` after it was done."""
    if date_only:
        day = to_wall(done_at, zone).date() + every
        local = datetime.combine(day, wall.time())
        return local, _instant(local, zone)
    due = done_at + every
    return to_wall(due, zone), due


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _instances(
    rule: str, start: datetime, zone: ZoneInfo, *, stop: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """The rule's (wall time, instant) pairs after `start` in instant order, each instant
    once; UNTIL (or `stop`) applied, COUNT not (the caller counts).

    Wall times come in order, but a wall time in a DST gap moves forward by the gap and can
    land after a later, real one (Lord Howe's 02:20 → 02:50 comes after 02:40): a heap puts
    them back in time order, releasing an instant once no later wall time can precede it."""
    pending: list[tuple[datetime, datetime]] = []
    last: datetime | None = None
    for wall in _walls(rule, start, zone, stop=stop):
        instant = _instant(wall, zone)
        heapq.heappush(pending, (instant, wall))
        while pending and pending[0][0] < instant - _SETTLE:
            last = yield from _emit(heapq.heappop(pending), last)
    while pending:
        last = yield from _emit(heapq.heappop(pending), last)


def _walls(
    rule: str, start: datetime, zone: ZoneInfo, *, stop: datetime | None = None
) -> Iterator[datetime]:
    """The rule's wall times after `start`, in wall-time order, UNTIL (or `stop`) applied."""
    until = _until(rule, zone)
    if stop is not None and (until is None or stop < until):
        until = stop
    parsed = rrulestr(_without_until(_without_count(rule)), dtstart=start)
    assert isinstance(parsed, rrule)
    if until is not None:
        parsed = parsed.replace(until=until)
    yield from parsed.xafter(start, inc=False)


def _emit(
    item: tuple[datetime, datetime], last: datetime | None
) -> Generator[tuple[datetime, datetime], None, datetime | None]:
    instant, wall = item
    if last is not None and instant <= last:
        return last  # two wall times on one instant: one occurrence
    yield wall, instant
    return instant


def _check_month_days(parts: dict[str, str]) -> None:
    """Refuse BYMONTH/BYMONTHDAY pairs that no calendar has (30 February), which a search
    would otherwise pursue for decades."""
    if "BYMONTHDAY" not in parts:
        return
    try:
        days = [int(d) for d in parts["BYMONTHDAY"].split(",")]
        months = (
            [int(m) for m in parts.get("BYMONTH", "1").split(",")]
            if "BYMONTH" in parts
            else list(range(1, 13))
        )
    except ValueError:
        raise RecurrenceError("recurrence BYMONTHDAY and BYMONTH take numbers") from None
    longest = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
    if not any(1 <= abs(d) <= longest.get(m, 31) for d in days for m in months):
        raise RecurrenceError("recurrence names a day that none of its months has")


def _check_restrictions(parts: dict[str, str]) -> None:
    """RFC 5545's placement rules, kept strictly so that every accepted rule either occurs
    soon or is found not to within a bounded search."""
    freq = parts["FREQ"]
    for name in ("BYYEARDAY", "BYWEEKNO"):
        if name in parts and freq != "YEARLY":
            raise RecurrenceError(f"recurrence {name} needs FREQ=YEARLY")
    if "BYSETPOS" in parts:
        if freq not in ("MONTHLY", "YEARLY") or "BYDAY" not in parts:
            raise RecurrenceError("recurrence BYSETPOS needs FREQ=MONTHLY or YEARLY with BYDAY")
        if any(k in parts for k in ("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")):
            raise RecurrenceError("recurrence BYSETPOS goes with BYDAY, not with day numbers")
        try:
            positions = [int(p) for p in parts["BYSETPOS"].split(",")]
        except ValueError:
            raise RecurrenceError("recurrence BYSETPOS takes numbers") from None
        if not all(1 <= abs(p) <= 4 for p in positions):
            raise RecurrenceError("recurrence BYSETPOS must be 1 to 4 or -1 to -4")


def _years_later(wall: datetime, years: int) -> datetime:
    try:
        return wall.replace(year=wall.year + years)
    except ValueError:  # 29 February
        return wall.replace(year=wall.year + years, day=28)


def _count(rule: str) -> int | None:
    match = re.search(r"(?:^|;)COUNT=(\d+)", rule)
    return None if match is None else int(match[1])


def _until(rule: str, zone: ZoneInfo) -> datetime | None:
    """UNTIL as a naive wall time in `zone` (a UTC `Z` value is converted; a date means the
    end of that day)."""
    match = re.search(r"(?:^|;)UNTIL=([0-9TZ]+)", rule)
    if match is None:
        return None
    text = match[1]
    try:
        if len(text) == 8:
            return datetime.strptime(text, "%Y%m%d").replace(hour=23, minute=59, second=59)
        value = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    except ValueError:
        raise RecurrenceError(f"recurrence UNTIL {text} is not a real date") from None
    if text.endswith("Z"):
        return to_wall(value.replace(tzinfo=UTC), zone)
    return value


def _without_count(rule: str) -> str:
    return ";".join(p for p in rule.split(";") if not p.startswith("COUNT="))


def _without_until(rule: str) -> str:
    return ";".join(p for p in rule.split(";") if not p.startswith("UNTIL="))
