"""Property tests of recurrence rules and series: order, wall times, never early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from duetime.tasks import recurrence
from duetime.tasks.model import Task
from duetime.tasks.profile import Profile
from duetime.tasks.recurrence import RecurrenceError
from duetime.tasks.series import next_task, start_series

ZONES = (
    "America/New_York",
    "Europe/London",
    "Pacific/Auckland",
    "Australia/Sydney",
    "Africa/Cairo",
    "Australia/Lord_Howe",
)
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
COUNT = 8
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@cache
def changes(zone_name: str) -> tuple[datetime, ...]:
    """Wall times (naive, old offset) at which `zone_name` changes offset, 2025-2030."""
    zone, found = ZoneInfo(zone_name), []
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    while moment.year < 2031:
        later = moment + timedelta(hours=1)
        before = moment.astimezone(zone).utcoffset()
        if before != later.astimezone(zone).utcoffset():
            assert before is not None
            found.append((later + before).replace(tzinfo=None))
        moment = later
    return tuple(found)


@st.composite
def walls(draw: st.DrawFn, zone_name: str) -> datetime:
    """Wall times 2025-2030 on a quarter hour, half of them within hours of a DST change
    (so in gaps and repeated periods too)."""
    if draw(st.booleans()):
        base = draw(st.sampled_from(changes(zone_name)))
        quarter = draw(st.integers(-16, 8))
        return base.replace(minute=0) + timedelta(minutes=15 * quarter)
    moment = draw(st.datetimes(datetime(2025, 1, 1), datetime(2030, 12, 31)))
    return moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)


@st.composite
def rules(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "HOURLY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 3))}")
    if freq == "HOURLY" and draw(st.booleans()):
        minutes = draw(st.sampled_from([(0,), (30,), (15, 45), (20, 40), (0, 30), (10, 50)]))
        parts.append("BYMINUTE=" + ",".join(map(str, minutes)))
    if freq != "HOURLY" and draw(st.booleans()):
        hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True))
        parts.append("BYHOUR=" + ",".join(map(str, sorted(hours))))
    if freq in ("DAILY", "WEEKLY", "MONTHLY") and draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))
        parts.append("BYDAY=" + ",".join(days))
    return ";".join(parts)


def accepted(rule: str, start: datetime, zone: ZoneInfo) -> str:
    try:
        normalized = recurrence.normalize(rule)
        recurrence.validate(normalized, start, zone)
    except RecurrenceError:
        assume(False)
    return normalized


def instant(w: datetime, zone: ZoneInfo) -> datetime:
    return recurrence.to_instant(w, zone)


def gap_at(w: datetime, zone: ZoneInfo) -> timedelta:
    """How far wall time `w` is moved forward: the gap if it does not exist, else zero."""
    first = w.replace(tzinfo=zone, fold=0).utcoffset()
    second = w.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    return max(second - first, timedelta(0))


def field_values(rule: str, name: str) -> list[str] | None:
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key == name:
            return value.split(",")
    return None


@SETTINGS
@given(st.sampled_from(ZONES).flatmap(lambda z: st.tuples(st.just(z), walls(z))), rules())
@example(("Australia/Lord_Howe", datetime(2026, 10, 4, 0, 0)), "FREQ=HOURLY;BYMINUTE=20,40")
def test_occurrences_increase_and_keep_their_wall_time(
    zone_and_start: tuple[str, datetime], rule: str
) -> None:
    zone_name, start = zone_and_start
    zone = ZoneInfo(zone_name)
    normalized = accepted(rule, start, zone)
    found = recurrence.upcoming(normalized, start, zone, start, 1, COUNT)
    assert found, "an accepted rule without COUNT or UNTIL occurs again"
    moments = [instant(start, zone)] + [instant(w, zone) for w in found]
    assert all(a < b for a, b in pairwise(moments))
    hours, weekdays = field_values(normalized, "BYHOUR"), field_values(normalized, "BYDAY")
    minutes = field_values(normalized, "BYMINUTE")
    for w in found:
        # The wall time is the rule's...
        assert w.second == 0
        assert str(w.minute) in (minutes or [str(start.minute)])
        if hours is not None:
            assert str(w.hour) in hours
        elif not normalized.startswith("FREQ=HOURLY"):
            assert w.hour == start.hour
        if weekdays is not None:
            assert DAYS[w.weekday()] in weekdays
        # ...and it is the local time it fires at, or moved forward by exactly the gap.
        fired = recurrence.to_wall(instant(w, zone), zone)
        assert fired == w + gap_at(w, zone)


@SETTINGS
@given(st.sampled_from(ZONES).flatmap(lambda z: st.tuples(st.just(z), walls(z))), rules())
@example(("Australia/Lord_Howe", datetime(2026, 10, 4, 0, 0)), "FREQ=HOURLY;BYMINUTE=20,40")
def test_occurrences_are_every_matching_wall_time_in_time_order(
    zone_and_start: tuple[str, datetime], rule: str
) -> None:
    """Reference model: every wall time the rule names after the start, read by the DST
    policy (fold=0), equal instants merged, sorted. Only instants that coincide merge."""
    zone_name, start = zone_and_start
    zone = ZoneInfo(zone_name)
    normalized = accepted(rule, start, zone)
    found = recurrence.upcoming(normalized, start, zone, start, 1, COUNT)
    parsed = rrulestr(normalized, dtstart=start)
    assert isinstance(parsed, rrule)
    named = []
    for w in parsed.xafter(start, inc=False):
        named.append(instant(w, zone))
        if len(named) >= COUNT + 12:
            break
    after = instant(start, zone)
    model = sorted({i for i in named if i > after})[:COUNT]
    assert [instant(w, zone) for w in found] == model


NY_FALL_BACK_0150 = datetime(2026, 11, 1, 5, 50, tzinfo=UTC)  # 01:50 EDT, first pass
REPEATS = ["PT15M", "PT45M", "PT1H", "PT2H", "PT4H", "P1D", "P3D", "P1W"]


@st.composite
def series_cases(draw: st.DrawFn) -> tuple[str, datetime, str | None, str | None, datetime]:
    zone_name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(zone_name)
    start = draw(walls(zone_name))
    if draw(st.integers(0, 3)) == 0:
        rule, repeat = None, draw(st.sampled_from(REPEATS))
    else:
        rule, repeat = accepted(draw(rules()), start, zone), None
    # Done at some moment from a day before the first due time to four days after it, often
    # within hours of a DST change.
    due = instant(start, zone)
    if draw(st.booleans()):
        near = draw(st.sampled_from(changes(zone_name)))
        now = instant(near, zone) + timedelta(minutes=draw(st.integers(-240, 240)))
        assume(now >= due - timedelta(days=1))
        assume(now <= due + timedelta(days=4))
    else:
        now = due + timedelta(minutes=draw(st.integers(-24 * 60, 4 * 24 * 60)))
    return zone_name, start, rule, repeat, now


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(series_cases())
@example(("America/New_York", datetime(2026, 10, 31, 9), None, "PT15M", NY_FALL_BACK_0150))
def test_next_task_is_never_due_at_or_before_now(
    case: tuple[str, datetime, str | None, str | None, datetime],
) -> None:
    zone_name, start, rule, repeat, now = case
    zone = ZoneInfo(zone_name)
    profile = Profile("u1", zone_name)
    created = instant(start, zone) - timedelta(days=2)
    task = Task(
        id="t1",
        user_id="u1",
        title="t",
        created_at=created,
        updated_at=created,
        due_at=instant(start, zone),
        due_local=start,
    )
    series = start_series(task, rule, repeat, None, profile, created)
    done = task
    for step in range(3):
        following = next_task(series, done, profile, now)
        assert following is not None
        assert following.due_at is not None
        assert following.due_at > now, (step, following.due_local)
        if repeat is not None and "T" in repeat:
            # a duration after completion is an instant: no wall time to follow the user
            assert following.due_local is None
        else:
            assert following.due_local is not None
            assert recurrence.to_instant(following.due_local, zone) == following.due_at
        if repeat is not None and repeat.startswith("PT"):
            every = following.due_at - now
            assert every == {"PT15M": 15, "PT45M": 45, "PT1H": 60, "PT2H": 120, "PT4H": 240}[
                repeat
            ] * timedelta(minutes=1)
        done, now = following, following.due_at + timedelta(minutes=7 * step)
