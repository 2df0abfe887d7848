"""Times and durations as a person types them on a terminal, for `duetime tasks`.

Dates are read by dateparser ("tomorrow 9:00", "fri 17:00", "in 2 hours", "dec 24 6pm"),
in English, preferring the future, as wall times in the zone the caller gives. A date with
no time of day means 09:00, as a Todoist-style app would remind of it in the morning. An
RFC3339 instant with an offset is taken as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from duetime.timefmt import format_rfc3339, parse_iso_duration, parse_rfc3339

MORNING = time(9, 0)

_EXAMPLES = '"tomorrow 9:00", "fri 17:00", "in 2 hours", "2026-12-24 18:00"'
_SHORT = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True)
class When:
    """A time someone typed: a wall time in `zone`, or an exact instant (`local` is None)."""

    instant: datetime  # aware
    local: datetime | None = None  # naive wall time in `zone`, when typed as one
    zone: str | None = None

    def wire(self) -> str:
        """As the task API takes a due time: the wall time without offset, else RFC3339."""
        if self.local is not None:
            return self.local.isoformat(timespec="seconds")
        return format_rfc3339(self.instant)


def parse_when(text: str, zone: str, now: datetime, *, languages: list[str] | None = None) -> When:
    """Read `text` as a time, relative to the aware `now`, as a wall time in `zone`."""
    text = text.strip()
    if not text:
        raise ValueError(f"a time is needed, such as {_EXAMPLES}")
    try:
        return When(parse_rfc3339(text))
    except ValueError:
        pass
    from dateparser.date import DateDataParser  # ≈ 0.3 s to import: only when needed

    tz = ZoneInfo(zone)
    base = now.astimezone(tz).replace(tzinfo=None)
    parser = DateDataParser(
        languages=languages or ["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": base,
            "RETURN_AS_TIMEZONE_AWARE": False,
            "RETURN_TIME_AS_PERIOD": True,
        },
    )
    found = parser.get_date_data(text)
    if found.date_obj is None:
        raise ValueError(f"cannot read {text!r} as a time; try {_EXAMPLES}")
    local = found.date_obj.replace(microsecond=0)
    if found.period == "day" and local.time() == time(0):
        local = datetime.combine(local.date(), MORNING)  # a date alone: remind in the morning
    return When(local.replace(tzinfo=tz), local=local, zone=zone)


def parse_span(text: str) -> str:
    """A duration as the task API takes it (ISO 8601): `10m`, `1h30m`, `2d`, `1w` or `PT10M`."""
    text = text.strip()
    if text.upper().startswith("P"):
        parse_iso_duration(text.upper(), anchor=datetime.now(UTC))  # raises on a bad one
        return text.upper()
    match = _SHORT.fullmatch(text.lower())
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration; use 10m, 1h30m, 2d, 1w or PT10M")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return iso_duration(
        timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    )


def iso_duration(span: timedelta) -> str:
    """`timedelta(days=1, minutes=10)` → `P1DT10M`; whole days stay days (`P1D`)."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    out = "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return out if out != "P" else "PT0S"


def parse_reminder(text: str, zone: str, now: datetime) -> dict[str, str]:
    """A reminder as typed: a duration before the due time (`10m`), or a time (`8:00`)."""
    try:
        return {"before": parse_span(text)}
    except ValueError:
        pass
    try:
        return {"at": format_rfc3339(parse_when(text, zone, now).instant)}
    except ValueError:
        raise ValueError(
            f"reminder {text!r} is neither a duration before the due time (10m, 1h, 1d, PT10M) "
            'nor a time ("tomorrow 8:00")'
        ) from None
