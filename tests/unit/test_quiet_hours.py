"""Quiet hours: which instants they hold, and the instant they release a reminder."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from duetime.tasks.profile import Profile, QuietHours

NY = ZoneInfo("America/New_York")
UTCZ = ZoneInfo("UTC")
NIGHT = QuietHours(time(22, 0), time(7, 0))
LUNCH = QuietHours(time(12, 0), time(13, 30))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("quiet", "at", "release"),
    [
        (LUNCH, "2026-01-05T11:59:59", None),
        (LUNCH, "2026-01-05T12:00", "2026-01-05T13:30"),  # start inclusive
        (LUNCH, "2026-01-05T13:29:59.999999", "2026-01-05T13:30"),
        (LUNCH, "2026-01-05T13:30", None),  # end exclusive
        (LUNCH, "2026-01-05T18:00", None),
        (NIGHT, "2026-01-05T21:59:59", None),
        (NIGHT, "2026-01-05T22:00", "2026-01-06T07:00"),  # start inclusive, spans midnight
        (NIGHT, "2026-01-05T23:59:59", "2026-01-06T07:00"),
        (NIGHT, "2026-01-06T00:00", "2026-01-06T07:00"),  # after midnight: the same day
        (NIGHT, "2026-01-06T06:59:59", "2026-01-06T07:00"),
        (NIGHT, "2026-01-06T07:00", None),  # end exclusive
        (NIGHT, "2026-01-06T12:00", None),
        (NIGHT, "2026-12-31T23:00", "2027-01-01T07:00"),  # across a year end
        (QuietHours(time(0, 0), time(6, 0)), "2026-01-06T00:00", "2026-01-06T06:00"),
        (QuietHours(time(20, 0), time(0, 0)), "2026-01-06T23:59", "2026-01-07T00:00"),
        (QuietHours(time(20, 0), time(0, 0)), "2026-01-07T00:00", None),
        (QuietHours(time(9, 0), time(9, 0)), "2026-01-06T09:00", None),  # equal: none
    ],
)
def test_release_in_utc(quiet: QuietHours, at: str, release: str | None) -> None:
    expected = None if release is None else utc(release)
    assert quiet.release(utc(at), UTCZ) == expected


@pytest.mark.parametrize(
    ("zone", "at", "release"),
    [
        # Tokyo (+09:00): 23:00 JST is 14:00Z; 07:00 JST next day is 22:00Z.
        ("Asia/Tokyo", "2026-01-05T14:00", "2026-01-05T22:00"),
        ("Asia/Tokyo", "2026-01-05T12:59", None),  # 21:59 JST
        ("Asia/Tokyo", "2026-01-05T22:00", None),  # 07:00 JST
        # New York in winter (-05:00) and summer (-04:00).
        ("America/New_York", "2026-01-06T03:00", "2026-01-06T12:00"),
        ("America/New_York", "2026-07-06T03:00", "2026-07-06T11:00"),
        # Kolkata (+05:30): 22:30 IST is 17:00Z; 07:00 IST is 01:30Z.
        ("Asia/Kolkata", "2026-01-05T17:00", "2026-01-06T01:30"),
        # A UTC instant on one date that is the next date locally (Auckland, +13:00).
        ("Pacific/Auckland", "2026-01-05T10:00", "2026-01-05T18:00"),  # 23:00 -> 07:00
        # Across the change: 23:00 EST on 03-07, released at 07:00 EDT on 03-08.
        ("America/New_York", "2026-03-08T04:00", "2026-03-08T11:00"),
        # Across the fall change: 23:00 EDT on 10-31, released at 07:00 EST on 11-01.
        ("America/New_York", "2026-11-01T03:00", "2026-11-01T12:00"),
        # Held in the repeated hour (01:30 EDT, then 01:30 EST): 07:00 EST.
        ("America/New_York", "2026-11-01T05:30", "2026-11-01T12:00"),
        ("America/New_York", "2026-11-01T06:30", "2026-11-01T12:00"),
    ],
)
def test_release_in_the_users_zone(zone: str, at: str, release: str | None) -> None:
    expected = None if release is None else utc(release)
    assert NIGHT.release(utc(at), ZoneInfo(zone)) == expected


@pytest.mark.parametrize(
    ("zone", "quiet", "at", "release"),
    [
        # New York 2026-03-08: 02:00 EST -> 03:00 EDT. An end of 02:30 moves to 03:30 EDT.
        ("America/New_York", QuietHours(time(22), time(2, 30)), "2026-03-08T05:00", "07:30"),
        ("America/New_York", QuietHours(time(1), time(2, 30)), "2026-03-08T06:45", "07:30"),
        # Lord Howe 2026-10-04: 02:00 -> 02:30 (+11). An end of 02:15 moves to 02:45.
        ("Australia/Lord_Howe", QuietHours(time(22), time(2, 15)), "2026-10-03T12:00", "15:45"),
        # Cairo 2026-04-24: 00:00 does not exist. An end at midnight moves to 01:00 EEST.
        ("Africa/Cairo", QuietHours(time(20), time(0)), "2026-04-23T19:00", "22:00"),
    ],
)
def test_an_end_in_a_gap_moves_forward_by_the_gap(
    zone: str, quiet: QuietHours, at: str, release: str
) -> None:
    instant = utc(at)
    expected = instant.replace(hour=int(release[:2]), minute=int(release[3:]))
    assert quiet.release(instant, ZoneInfo(zone)) == expected


def test_a_reminder_held_in_the_second_pass_of_a_repeated_hour_is_released_after_it() -> None:
    """Quiet 00:00-01:30 in New York on 2026-11-01, when 01:00-02:00 happens twice. A
    reminder due at 06:15Z (01:15 EST, the second pass) is inside quiet hours; they end at
    the first 01:30 after it, 01:30 EST = 06:30Z, not at 01:30 EDT (05:30Z), which has
    already passed."""
    quiet = QuietHours(time(0, 0), time(1, 30))
    instant = utc("2026-11-01T06:15")
    assert quiet.release(instant, NY) == utc("2026-11-01T06:30")


ZONES = (
    "America/New_York",
    "Europe/London",
    "Pacific/Auckland",
    "Australia/Sydney",
    "Africa/Cairo",
    "Australia/Lord_Howe",
    "UTC",
)
quarter_hours = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES),
    quarter_hours,
    quarter_hours,
    st.datetimes(datetime(2025, 1, 1), datetime(2030, 12, 31)).map(lambda d: d.replace(tzinfo=UTC)),
)
@example("America/New_York", time(0, 0), time(1, 30), utc("2026-11-01T06:15"))
def test_release_is_after_the_instant_at_the_end_wall_time(
    zone_name: str, start: time, end: time, instant: datetime
) -> None:
    zone = ZoneInfo(zone_name)
    quiet = QuietHours(start, end)
    local = instant.astimezone(zone).time()
    if start == end:
        inside = False
    elif start < end:
        inside = start <= local < end
    else:
        inside = local >= start or local < end
    release = quiet.release(instant, zone)
    if not inside:
        assert release is None
        return
    assert release is not None
    assert release.tzinfo is UTC
    assert release > instant  # never released before the reminder was due
    assert release - instant <= timedelta(hours=25)
    wall = release.astimezone(zone).replace(tzinfo=None)
    if wall.time() != end:  # an end that a gap skips: moved forward by the gap
        skipped = datetime.combine(wall.date(), end)
        reading = skipped.replace(tzinfo=zone, fold=0).astimezone(UTC)
        assert reading.astimezone(zone).replace(tzinfo=None) != skipped
        assert reading == release


def test_profile_zone_falls_back() -> None:
    assert Profile("u1", "Asia/Tokyo").zone("Europe/Paris") == ZoneInfo("Asia/Tokyo")
    assert Profile("u1").zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    assert Profile("u1").zone() == ZoneInfo("UTC")
