"""Races inside the embedded engine, made certain with a slow in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from duetime.jobs import FailurePolicy, Job, Trigger
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.memory_store import MemoryJobStore
from duetime.jobs.store import Outcome, StoredJob
from duetime.testing import RecordingHandler


class SlowStore(MemoryJobStore):
    """Outcomes commit at once but their writer returns late; window loads are slow."""

    async def apply(self, outcomes: Sequence[Outcome]) -> list[bool]:
        applied = await super().apply(outcomes)
        await asyncio.sleep(0.05)
        return applied

    async def earliest(
        self, limit: int, *, after: tuple[int, str] | None = None
    ) -> list[StoredJob]:
        rows = await super().earliest(limit, after=after)
        await asyncio.sleep(0.05)
        return rows


async def test_an_overwrite_while_an_outcome_is_being_written_is_not_lost() -> None:
    recorder = RecordingHandler()
    s = EmbeddedJobScheduler(SlowStore())
    s.add_handler("", recorder)
    await s.start()
    try:
        await s.schedule(Job("r", schedule="@every 1h", due_time="0s", data="old"))
        await recorder.wait_for(1)
        await s.schedule(Job("r", due_time="300ms", data="new"), overwrite=True)
        await recorder.wait_for(2, timeout=5)
        assert [t.data for t in recorder.triggers] == ["old", "new"]
    finally:
        await s.stop()


async def test_jobs_scheduled_during_window_loads_fire_once() -> None:
    recorder = RecordingHandler()
    s = EmbeddedJobScheduler(SlowStore(), window_size=4)
    s.add_handler("", recorder)
    await s.start()
    try:
        await s.schedule_many([Job(f"far-{i}", due_time="1h") for i in range(10)])
        for i in range(40):  # every one due now, many landing while the window reloads
            await s.schedule(Job(f"now-{i:02d}", due_time="0s"))
            await asyncio.sleep(0.01)
        await recorder.wait_for(40)
        await asyncio.sleep(0.3)
        assert sorted(recorder.names()) == [f"now-{i:02d}" for i in range(40)]
    finally:
        await s.stop()


async def test_a_handler_that_raises_cancelled_error_fails_the_attempt_only() -> None:
    seen: list[Trigger] = []

    async def handler(trigger: Trigger) -> None:
        seen.append(trigger)
        raise asyncio.CancelledError

    s = EmbeddedJobScheduler(MemoryJobStore())
    s.add_handler("", handler)
    await s.start()
    try:
        await s.schedule(Job("tick", schedule="@every 100ms", failure_policy=FailurePolicy.drop()))
        await asyncio.sleep(0.8)
    finally:
        await s.stop()
    assert len({t.scheduled_at for t in seen}) >= 3  # the job kept its schedule


async def test_an_error_text_the_database_cannot_store_is_cleaned() -> None:
    s = EmbeddedJobScheduler(MemoryJobStore())

    async def handler(trigger: Trigger) -> None:
        raise ValueError("bad \x00 byte \udcff")

    s.add_handler("", handler)
    await s.start()
    try:
        await s.schedule(Job("bad", due_time="0s", failure_policy=FailurePolicy.drop()))
        for _ in range(100):
            if dead := await s.dead_letters():
                break
            await asyncio.sleep(0.02)
        [letter] = dead
        assert "\x00" not in letter.error and "\udcff" not in letter.error
        letter.error.encode("utf-8")
    finally:
        await s.stop()
