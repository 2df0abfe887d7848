"""Wire formats for time: RFC3339 instants, Go durations, ISO 8601 durations, Dapr's dueTime.

This is the one module that turns strings into datetimes and back. It does no I/O and never
reads the clock: callers pass `now`. Every datetime it returns is aware UTC; every datetime it
accepts must be aware (any zone). Durations are `timedelta`s, so precision stops at the
microsecond: finer digits are truncated toward zero.

What is accepted mirrors Dapr v1.18.3 (go-etcd-cron's `parsePointInTime` and dapr/kit's
`ParseISO8601Duration`), except that malformed input Dapr lets through by accident is
rejected here (see `parse_iso_duration`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = [
    "format_go_duration",
    "format_rfc3339",
    "from_micros",
    "parse_duration",
    "parse_go_duration",
    "parse_instant",
    "parse_iso_duration",
    "parse_rfc3339",
    "to_micros",
]

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, what Go prints
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX_GO_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
_GO_ELEMENT = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_GO_EXPECTED = (
    'expected a Go duration such as "300ms", "1.5h" or "2h45m" (units ns, us, ms, s, m, h)'
)

_ISO_DURATION = re.compile(
    r"P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?"
    r"(?:(T)(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?"
)
_ISO_EXPECTED = 'expected an ISO 8601 duration such as "PT10S", "P1DT2H" or "P2W"'

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_RFC3339_EXPECTED = 'expected an RFC3339 time such as "2026-01-01T09:00:00Z"'

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _require_aware(dt: datetime, what: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {dt.isoformat()}")
    return dt.astimezone(UTC)


def parse_go_duration(s: str) -> timedelta:
    """Parse Go's `time.ParseDuration` syntax: `"300ms"`, `"-1.5h"`, `"2h45m"`, `"0"`.

    An optional sign, then one or more decimal numbers each followed by a unit (ns, us, µs,
    μs, ms, s, m, h). A bare `"0"` needs no unit. Like Go, the total must fit in an int64 of
    nanoseconds (about 292 years). Digits below a microsecond are truncated toward zero.
    Raises `ValueError` naming the input.
    """
    nanos = _go_duration_nanos(s)
    micros = abs(nanos) // 1_000
    return timedelta(microseconds=-micros if nanos < 0 else micros)


def _go_duration_nanos(s: str) -> int:
    def bad(reason: str) -> ValueError:
        return ValueError(f"invalid Go duration {_quote(s)}: {reason}; {_GO_EXPECTED}")

    rest, negative = s, False
    if rest[:1] in ("+", "-") and rest:
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise bad("it is empty")
    total, pos = 0, 0
    while pos < len(rest):
        match = _GO_ELEMENT.match(rest, pos)
        assert match is not None  # every part of the pattern is optional
        whole, fraction, unit = match.groups()
        if not whole and not fraction:
            raise bad(f"expected a number at {_quote(rest[pos:])}")
        if not unit:
            raise bad(f"missing unit after {_quote(match.group(0))}")
        if unit not in _NS_PER_UNIT:
            raise bad(f"unknown unit {_quote(unit)}")
        scale = _NS_PER_UNIT[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > (_MAX_GO_NS + 1 if negative else _MAX_GO_NS):
            raise bad("it overflows Go's maximum duration of about 292 years")
        pos = match.end()
    return -total if negative else total


def format_go_duration(td: timedelta) -> str:
    """Format like Go's `Duration.String()`: `"1s"`, `"1m30s"`, `"1h0m0s"`, `"500ms"`, `"1.5µs"`."""
    micros = td // _MICROSECOND
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros == 0:
        return "0s"
    if micros < 1_000:
        return f"{sign}{micros}\u00b5s"
    if micros < 1_000_000:
        return f"{sign}{_decimal(micros, 3)}ms"
    seconds, frac = divmod(micros, 1_000_000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = _decimal(sec * 1_000_000 + frac, 6) + "s"
    if minutes:
        text = f"{minute}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _decimal(value: int, places: int) -> str:
    """`value / 10**places` without trailing zeros: `_decimal(1500, 3) == "1.5"`."""
    whole, frac = divmod(value, 10**places)
    digits = f"{frac:0{places}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def parse_iso_duration(s: str, *, anchor: datetime | None = None) -> timedelta:
    """Parse a non-repeating ISO 8601 duration: `"PT10S"`, `"P1DT2H"`, `"P2W"`, `"P1D"`.

    Mirrors Dapr (dapr/kit `time.ParseISO8601Duration`, as used by go-etcd-cron):

    - Components are whole numbers: `"PT0.5S"` is rejected, as Dapr rejects it (write a Go
      duration such as `"500ms"` instead).
    - W is 7 days and may be combined with D (`"P1W2D"` is 9 days); D, H, M, S are fixed
      lengths (a day is 24 hours: Dapr counts in UTC).
    - Y and M (months) are calendar steps with Go's `AddDate` rule, counted in UTC from
      `anchor`: the month is stepped, then an out-of-range day overflows into the next month
      (2026-01-31 + P1M is 2026-03-03, 2024-02-29 + P1Y is 2025-03-01). They have no fixed
      length, so without `anchor` they raise `ValueError`.
    - Repeating forms (`"R5/PT10S"`) are rejected: Dapr refuses them for dueTime and ttl.

    Stricter than Dapr, whose parser skips characters it does not know (so that `"PT10X"`
    silently means zero): components must be in ISO order, at least one must be present,
    and signs, fractions and unknown letters raise `ValueError`.
    """
    years, months, days, nanos = _iso_parts(s)
    time_part = timedelta(microseconds=nanos // 1_000)
    if anchor is None:
        if years or months:
            raise ValueError(
                f"ISO 8601 duration {_quote(s)}: years and months have no fixed length; "
                "they can only be counted from a point in time (a dueTime or ttl)"
            )
        try:
            return timedelta(days=days) + time_part
        except OverflowError:
            raise ValueError(f"ISO 8601 duration {_quote(s)} is too large") from None
    start = _require_aware(anchor, "anchor")
    try:
        return _add_date(start, years, months, days) + time_part - start
    except (OverflowError, ValueError):
        raise ValueError(
            f"ISO 8601 duration {_quote(s)} counted from {format_rfc3339(start)} "
            "goes beyond the year 9999"
        ) from None


def _iso_parts(s: str) -> tuple[int, int, int, int]:
    """(years, months, days, nanoseconds) of an ISO 8601 duration."""
    if s.startswith("R"):
        raise ValueError(
            f"ISO 8601 duration {_quote(s)}: repeating durations (R<n>/...) are not accepted "
            "for dueTime or ttl; give a single duration such as PT10S"
        )
    if "." in s or "," in s:
        raise ValueError(
            f"ISO 8601 duration {_quote(s)}: components must be whole numbers "
            '(Dapr rejects fractions); use a Go duration such as "500ms"'
        )
    match = _ISO_DURATION.fullmatch(s)
    if match is None:
        raise ValueError(f"invalid ISO 8601 duration {_quote(s)}; {_ISO_EXPECTED}")
    y, mo, w, d, t, h, mi, sec = match.groups()
    if not any((y, mo, w, d, h, mi, sec)) or (t and not any((h, mi, sec))):
        raise ValueError(f"ISO 8601 duration {_quote(s)} has no components; {_ISO_EXPECTED}")
    nanos = (int(h or 0) * 3600 + int(mi or 0) * 60 + int(sec or 0)) * 1_000_000_000
    if nanos > _MAX_GO_NS:
        raise ValueError(
            f"ISO 8601 duration {_quote(s)}: its hours, minutes and seconds overflow "
            "Go's maximum duration of about 292 years"
        )
    return int(y or 0), int(mo or 0), int(w or 0) * 7 + int(d or 0), nanos


def _add_date(dt: datetime, years: int, months: int, days: int) -> datetime:
    """Go's `t.AddDate(years, months, days)`: step the month, then let the day overflow."""
    month_index = dt.month - 1 + months
    year = dt.year + years + month_index // 12
    first = dt.replace(year=year, month=month_index % 12 + 1, day=1)
    return first + timedelta(days=dt.day - 1 + days)


def parse_duration(s: str, *, anchor: datetime | None = None) -> timedelta:
    """Parse a Go duration (`"10s"`) or an ISO 8601 duration (`"PT10S"`).

    `anchor` is only needed for ISO years and months; see `parse_iso_duration`.
    """
    if s.startswith(("P", "R")):
        return parse_iso_duration(s, anchor=anchor)
    return parse_go_duration(s)


def parse_rfc3339(s: str) -> datetime:
    """Parse an RFC3339 instant with `Z` or an offset, returned as aware UTC.

    `"2026-01-01T09:00:00Z"`, `"2026-01-01T09:00:00.123+05:30"`. Up to 9 fractional digits
    (truncated to microseconds). Like Go's `time.Parse(time.RFC3339, ...)`, `T` and `Z` must
    be upper case and a leap second (`:60`) is rejected.
    """
    match = _RFC3339.fullmatch(s)
    if match is None:
        raise ValueError(f"invalid RFC3339 time {_quote(s)}; {_RFC3339_EXPECTED}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if offset is None:
        raise ValueError(
            f"RFC3339 time {_quote(s)} needs a time zone offset, "
            f'such as "{s}Z" for UTC or "{s}+02:00"'
        )
    try:
        zone = UTC
        if offset != "Z":
            off_hours, off_minutes = int(offset[1:3]), int(offset[4:6])
            if off_hours > 23 or off_minutes > 59:
                raise ValueError("offset out of range")
            delta = timedelta(hours=off_hours, minutes=off_minutes)
            zone = timezone(-delta if offset[0] == "-" else delta)
        micros = int((fraction or "0").ljust(6, "0")[:6])
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, zone
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"invalid RFC3339 time {_quote(s)}: {exc}; {_RFC3339_EXPECTED}") from None


def format_rfc3339(dt: datetime) -> str:
    """Format as RFC3339 in UTC with `Z`; fractional seconds only when non-zero."""
    utc = dt if dt.tzinfo is UTC else _require_aware(dt, "format_rfc3339")
    text = utc.isoformat()[:-6]  # without "+00:00"; the year always has four digits
    return (text.rstrip("0") if utc.microsecond else text) + "Z"


def to_micros(dt: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (for storage)."""
    return (_require_aware(dt, "to_micros") - _EPOCH) // _MICROSECOND


def from_micros(n: int) -> datetime:
    """The aware UTC datetime `n` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=n)


def parse_instant(s: str, *, now: datetime) -> datetime:
    """Parse a Dapr `dueTime` or `ttl`: an RFC3339 instant, or a duration counted from `now`.

    Tried in Dapr's order: RFC3339, Go duration (`"10s"`, `"1h30m"`, negative allowed, as in
    Dapr), then non-repeating ISO 8601 duration (`"PT10S"`; years and months are calendar
    steps from `now`). The error names whichever format the input most looks like.
    """
    start = _require_aware(now, "now")
    if _RFC3339.fullmatch(s) or re.match(r"[0-9]{4}-", s):
        return parse_rfc3339(s)
    if not re.match(r"[0-9.+\-PR]", s):
        raise ValueError(
            f"{_quote(s)} is not an RFC3339 time (2026-01-01T09:00:00Z), "
            "a Go duration (10s, 1h30m) or an ISO 8601 duration (PT10S)"
        )
    try:
        if s.startswith(("P", "R")):
            return start + parse_iso_duration(s, anchor=start)
        return start + parse_go_duration(s)
    except OverflowError:
        raise ValueError(
            f"{_quote(s)} counted from {format_rfc3339(start)} goes beyond the year 9999"
        ) from None
