"""The clock port: the only place duetime reads the wall clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    def now_micros(self) -> int:
        """The current time as microseconds since the Unix epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def now_micros(self) -> int:
        return time.time_ns() // 1000
