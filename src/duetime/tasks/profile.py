"""A user's time settings: their default time zone and quiet hours. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock hours in which non-urgent reminders are held, `start` inclusive,
    `end` exclusive; `start > end` spans midnight (22:00–07:00). Equal means none."""

    start: time
    end: time

    def release(self, instant: datetime, zone: ZoneInfo) -> datetime | None:
        """When a reminder due at `instant` may be delivered: None if `instant` is outside
        quiet hours, else the instant they end (the first `end` wall time after it; an `end`
        that a DST gap skips moves forward by the gap)."""
        if self.start == self.end:
            return None
        local = instant.astimezone(zone)
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            inside = self.start <= now < self.end
        else:
            inside = now >= self.start or now < self.end
        if not inside:
            return None
        day = local.date() if now < self.end else local.date() + timedelta(days=1)
        wall = datetime.combine(day, self.end)
        for fold in (0, 1):  # in a repeated hour, the end may be its second pass
            release = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if release > instant:
                return release
        return (
            datetime.combine(day + timedelta(days=1), self.end).replace(tzinfo=zone).astimezone(UTC)
        )


@dataclass(frozen=True)
class Profile:
    user_id: str
    timezone: str | None = None
    quiet_hours: QuietHours | None = None

    def zone(self, fallback: str | None = None) -> ZoneInfo:
        """The user's zone, else `fallback` (the task's), else UTC."""
        return ZoneInfo(self.timezone or fallback or "UTC")
