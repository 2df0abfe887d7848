"""Wire formats: Go and ISO 8601 durations, RFC3339, and Dapr's dueTime/ttl."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duetime.timefmt import (
    format_go_duration,
    format_rfc3339,
    from_micros,
    parse_duration,
    parse_go_duration,
    parse_instant,
    parse_iso_duration,
    parse_rfc3339,
    to_micros,
)

NOW = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("-0", timedelta(0)),
        ("+0", timedelta(0)),
        ("0s", timedelta(0)),
        ("10s", timedelta(seconds=10)),
        ("300ms", timedelta(milliseconds=300)),
        ("500ms", timedelta(milliseconds=500)),
        ("-1.5h", -timedelta(hours=1, minutes=30)),
        ("+1.5h", timedelta(hours=1, minutes=30)),
        ("2h45m", timedelta(hours=2, minutes=45)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h30m10.5s", timedelta(hours=1, minutes=30, seconds=10.5)),
        ("1.s", timedelta(seconds=1)),
        (".5s", timedelta(milliseconds=500)),
        ("10us", timedelta(microseconds=10)),
        ("10\u00b5s", timedelta(microseconds=10)),
        ("10\u03bcs", timedelta(microseconds=10)),
        ("1500ns", timedelta(microseconds=1)),  # truncated below a microsecond
        ("-1500ns", -timedelta(microseconds=1)),  # toward zero
        ("999ns", timedelta(0)),
        ("1m1m", timedelta(minutes=2)),
        ("2562047h47m16.854775807s", timedelta(seconds=9223372036, microseconds=854775)),
        ("-2562047h47m16.854775808s", -timedelta(seconds=9223372036, microseconds=854775)),
    ],
)
def test_go_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("-", "empty"),
        ("10", "missing unit"),
        ("1h10", "missing unit"),
        ("10x", 'unknown unit "x"'),
        ("10 s", 'unknown unit " s"'),
        ("1hm", 'unknown unit "hm"'),
        ("10S", 'unknown unit "S"'),
        ("s", "expected a number"),
        (".s", "expected a number"),
        (" 10s", "expected a number"),
        ("PT10S", "expected a number"),
        ("2562047h47m16.854775808s", "overflow"),
        ("9999999999999999999h", "overflow"),
    ],
)
def test_go_duration_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="Go duration") as info:
        parse_go_duration(text)
    message = str(info.value)
    assert f'"{text}"' in message
    assert reason in message
    assert "300ms" in message  # says what is expected


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=1), "1s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=1), "1h0m0s"),
        (timedelta(hours=26, seconds=1), "26h0m1s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=1), "1\u00b5s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(minutes=1, seconds=1, microseconds=1), "1m1.000001s"),
        (-timedelta(seconds=90), "-1m30s"),
        (-timedelta(milliseconds=1), "-1ms"),
    ],
)
def test_format_go_duration(td: timedelta, text: str) -> None:
    assert format_go_duration(td) == text
    assert parse_go_duration(text) == td


@given(st.timedeltas(min_value=-timedelta(days=100_000), max_value=timedelta(days=100_000)))
def test_go_duration_round_trips(td: timedelta) -> None:
    assert parse_go_duration(format_go_duration(td)) == td


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT10S", timedelta(seconds=10)),
        ("PT1M", timedelta(minutes=1)),
        ("PT1H", timedelta(hours=1)),
        ("P1D", timedelta(days=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("P2W", timedelta(days=14)),
        ("P1W2D", timedelta(days=9)),
        ("P1DT1H1M1S", timedelta(days=1, hours=1, minutes=1, seconds=1)),
        ("PT36H", timedelta(hours=36)),
        ("PT0S", timedelta(0)),
    ],
)
def test_iso_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_iso_duration(text) == expected
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("anchor", "text", "end"),
    [
        # Go's AddDate: step the month, then let an out-of-range day overflow.
        (datetime(2026, 1, 31, 9, tzinfo=UTC), "P1M", datetime(2026, 3, 3, 9, tzinfo=UTC)),
        (datetime(2024, 1, 31, 9, tzinfo=UTC), "P1M", datetime(2024, 3, 2, 9, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), "P1Y", datetime(2025, 3, 1, tzinfo=UTC)),
        (datetime(2026, 11, 15, tzinfo=UTC), "P2M", datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), "P1Y2M3DT4H", datetime(2027, 3, 4, 4, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), "P13M", datetime(2027, 2, 1, tzinfo=UTC)),
        # An aware anchor in another zone is counted in UTC.
        (
            datetime(2026, 1, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
            "P1M",
            datetime(2026, 3, 1, 4, tzinfo=UTC),
        ),
    ],
)
def test_iso_years_and_months_are_calendar_steps_from_the_anchor(
    anchor: datetime, text: str, end: datetime
) -> None:
    assert anchor + parse_iso_duration(text, anchor=anchor) == end
    assert anchor + parse_duration(text, anchor=anchor) == end


@pytest.mark.parametrize("text", ["P1Y", "P1M", "P1Y1D"])
def test_iso_years_and_months_need_an_anchor(text: str) -> None:
    with pytest.raises(ValueError, match="no fixed length"):
        parse_iso_duration(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("R5/PT10S", "repeating"),
        ("R/PT10S", "repeating"),
        ("R0/PT1S", "repeating"),
        ("PT0.5S", "whole numbers"),
        ("PT0,5S", "whole numbers"),
        ("P", "no components"),
        ("PT", "no components"),
        ("P1DT", "no components"),
        ("PT10X", "expected an ISO 8601 duration"),
        ("P1H", "expected an ISO 8601 duration"),
        ("PT1D", "expected an ISO 8601 duration"),
        ("P1DT2H3D", "expected an ISO 8601 duration"),
        ("PT-10S", "expected an ISO 8601 duration"),
        ("pt10s", "expected an ISO 8601 duration"),
        ("P10", "expected an ISO 8601 duration"),
        ("PT99999999999H", "overflow"),
    ],
)
def test_iso_duration_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601") as info:
        parse_iso_duration(text, anchor=NOW)
    assert f'"{text}"' in str(info.value)
    assert reason in str(info.value)


def test_parse_duration_dispatches_on_the_first_letter() -> None:
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("PT1H") == timedelta(hours=1)
    with pytest.raises(ValueError, match="Go duration"):
        parse_duration("10")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T09:00:00Z", datetime(2026, 1, 1, 9, tzinfo=UTC)),
        ("2026-01-01T09:00:00+05:30", datetime(2026, 1, 1, 3, 30, tzinfo=UTC)),
        ("2026-01-01T09:00:00-08:00", datetime(2026, 1, 1, 17, tzinfo=UTC)),
        ("2026-01-01T09:00:00-00:00", datetime(2026, 1, 1, 9, tzinfo=UTC)),
        ("2026-01-01T09:00:00.5Z", datetime(2026, 1, 1, 9, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-01-01T09:00:00.123456Z", datetime(2026, 1, 1, 9, 0, 0, 123_456, tzinfo=UTC)),
        ("2026-01-01T09:00:00.123456789Z", datetime(2026, 1, 1, 9, 0, 0, 123_456, tzinfo=UTC)),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
        ("2026-01-01T00:30:00+01:00", datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
    ],
)
def test_rfc3339_accepts(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-01-01T09:00:00", "needs a time zone offset"),
        ("2026-01-01T09:00:00.5", "needs a time zone offset"),
        ("2026-01-01 09:00:00Z", "expected an RFC3339 time"),
        ("2026-01-01t09:00:00z", "expected an RFC3339 time"),
        ("2026-01-01", "expected an RFC3339 time"),
        ("2026-01-01T09:00Z", "expected an RFC3339 time"),
        ("2026-01-01T09:00:00.1234567890Z", "expected an RFC3339 time"),
        ("2026-01-01T09:00:00+0530", "expected an RFC3339 time"),
        ("2026-13-01T09:00:00Z", "month must be in 1..12"),
        ("2026-02-29T09:00:00Z", "day is out of range"),
        ("2026-01-01T24:00:00Z", "hour must be in 0..23"),
        ("2026-12-31T23:59:60Z", "second must be in 0..59"),
        ("2026-01-01T09:00:00+24:00", "offset out of range"),
        ("0001-01-01T00:00:00+01:00", "expected an RFC3339 time"),
    ],
)
def test_rfc3339_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="RFC3339") as info:
        parse_rfc3339(text)
    assert f'"{text}"' in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2026, 1, 1, 9, tzinfo=UTC), "2026-01-01T09:00:00Z"),
        (datetime(2026, 1, 1, 9, 0, 0, 500_000, tzinfo=UTC), "2026-01-01T09:00:00.5Z"),
        (datetime(2026, 1, 1, 9, 0, 0, 1, tzinfo=UTC), "2026-01-01T09:00:00.000001Z"),
        (datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=2))), "2026-01-01T07:00:00Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
    ],
)
def test_format_rfc3339(dt: datetime, text: str) -> None:
    assert format_rfc3339(dt) == text
    assert parse_rfc3339(text) == dt


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 1, 1, 9)
    with pytest.raises(ValueError, match="aware"):
        format_rfc3339(naive)
    with pytest.raises(ValueError, match="aware"):
        to_micros(naive)
    with pytest.raises(ValueError, match="aware"):
        parse_instant("10s", now=naive)


@given(st.datetimes(timezones=st.just(UTC)))
def test_rfc3339_round_trips(dt: datetime) -> None:
    assert parse_rfc3339(format_rfc3339(dt)) == dt


@given(st.datetimes(timezones=st.just(UTC)))
def test_micros_round_trip(dt: datetime) -> None:
    assert from_micros(to_micros(dt)) == dt


def test_micros_known_values() -> None:
    assert to_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    assert from_micros(1_767_258_000_000_000) == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert from_micros(0).tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-01T10:00:00Z", datetime(2026, 2, 1, 10, tzinfo=UTC)),
        ("2026-02-01T10:00:00+01:00", datetime(2026, 2, 1, 9, tzinfo=UTC)),
        ("2025-01-01T00:00:00Z", datetime(2025, 1, 1, tzinfo=UTC)),  # past: allowed
        ("10s", NOW + timedelta(seconds=10)),
        ("1h30m", NOW + timedelta(hours=1, minutes=30)),
        ("500ms", NOW + timedelta(milliseconds=500)),
        ("0s", NOW),
        ("0", NOW),
        ("-10s", NOW - timedelta(seconds=10)),  # Go durations may be negative, as in Dapr
        ("PT10S", NOW + timedelta(seconds=10)),
        ("P1D", NOW + timedelta(days=1)),
        ("P1M", datetime(2026, 3, 3, 9, tzinfo=UTC)),  # Jan 31 + 1 month, Go's AddDate
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    assert parse_instant(text, now=NOW) == expected


def test_parse_instant_counts_from_an_aware_now_in_any_zone() -> None:
    local_now = NOW.astimezone(timezone(timedelta(hours=9)))
    result = parse_instant("10s", now=local_now)
    assert result == NOW + timedelta(seconds=10)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is not an RFC3339 time"),
        ("tomorrow", "is not an RFC3339 time"),
        ("10", "missing unit"),
        ("2026-01-01T09:00:00", "needs a time zone offset"),
        ("2026-01-01", "expected an RFC3339 time"),
        ("R5/PT10S", "repeating"),
        ("PT0.5S", "whole numbers"),
        ("P9999Y", "year 9999"),
    ],
)
def test_parse_instant_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_instant(text, now=NOW)
    assert reason in str(info.value)
    assert f'"{text}"' in str(info.value)


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-3, minutes=-30)), ZoneInfo("Pacific/Chatham")]
        ),
    )
)
def test_format_rfc3339_spells_every_field_in_utc(dt: datetime) -> None:
    u = dt.astimezone(UTC)
    fraction = f".{u.microsecond:06d}".rstrip("0") if u.microsecond else ""
    expected = (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f"{fraction}Z"
    )
    assert format_rfc3339(dt) == expected
