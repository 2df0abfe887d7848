"""The `JobScheduler` contract, run against every backend through one fixture.

Timing bounds are generous (a busy 2-core machine); what is asserted strictly is ordering
and counts: never early, exactly once, nothing lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from duetime.jobs import (
    Answer,
    DeadLetter,
    FailurePolicy,
    Job,
    JobExistsError,
    JobState,
    ScheduleError,
    Trigger,
)
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.memory_store import MemoryJobStore
from duetime.jobs.sql_store import SqlJobStore
from duetime.jobs.store import JobStore
from duetime.testing import RecordingHandler

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: object) -> Callable[[], JobStore]:
    """A factory of stores that share one durable location (so a restart sees the data)."""
    kind = request.param
    if kind == "memory":
        shared = MemoryJobStore()
        return lambda: shared
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/jobs.db"
    else:
        url = request.getfixturevalue("postgres_url")
    return lambda: SqlJobStore(url)


@pytest.fixture
def recorder() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def scheduler(
    make_store: Callable[[], JobStore], recorder: RecordingHandler
) -> AsyncIterator[EmbeddedJobScheduler]:
    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", recorder)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def dead_letters(s: EmbeddedJobScheduler, timeout: float = 10.0) -> list[DeadLetter]:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await s.dead_letters()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("no dead letter in time")
        await asyncio.sleep(0.05)
    return found


async def test_one_shot_fires_once_never_early_then_disappears(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    due = now() + timedelta(milliseconds=500)
    state = await scheduler.schedule(Job("once", due_time=rfc3339(due), data={"n": 1}))
    assert state.next_fire_at == due
    [trigger] = await recorder.wait_for(1)
    assert trigger.name == "once" and trigger.data == {"n": 1}
    assert trigger.scheduled_at == due
    assert trigger.fired_at >= due and recorder.never_early()
    assert not trigger.late and trigger.attempt == 1
    await asyncio.sleep(0.3)
    assert len(recorder.triggers) == 1
    assert await scheduler.get("once") is None


async def test_get_echoes_the_job_as_sent(scheduler: EmbeddedJobScheduler) -> None:
    job = Job(
        "echo",
        schedule="@every 1h",
        due_time="10m",
        repeats=5,
        ttl="PT3H",
        data=["a", 1, None, True, {"b": 2.5}],
        failure_policy=FailurePolicy("constant", timedelta(seconds=5), None),
    )
    await scheduler.schedule(job)
    state = await scheduler.get("echo")
    assert state is not None
    assert state.job == job
    assert timedelta(minutes=9) < state.next_fire_at - now() <= timedelta(minutes=10)
    assert state.fired == 0 and state.attempt == 0


@pytest.mark.parametrize("data", [None, "text", 42, 1.5, True, [1, "x"], {"k": {"n": [None]}}])
async def test_data_of_any_json_type_is_delivered_as_is(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler, data: object
) -> None:
    await scheduler.schedule(Job("data", due_time="0s", data=data))
    [trigger] = await recorder.wait_for(1)
    assert trigger.data == data


async def test_existing_name_needs_overwrite(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    await scheduler.schedule(Job("dup", due_time="1h", data="old"))
    with pytest.raises(JobExistsError):
        await scheduler.schedule(Job("dup", due_time="0s", data="new"))
    state = await scheduler.get("dup")
    assert state is not None and state.job.data == "old"
    await scheduler.schedule(Job("dup", due_time="0s", data="new"), overwrite=True)
    [trigger] = await recorder.wait_for(1)
    assert trigger.data == "new"


async def test_concurrent_calls_each_get_their_own_answer(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    # concurrent calls may be committed together: a taken name fails only its own call
    await scheduler.schedule(Job("taken", due_time="1h", data="first"))
    calls = [scheduler.schedule(Job(f"new-{i}", due_time="1h", data=i)) for i in range(20)]
    calls += [scheduler.schedule(Job("taken", due_time="1h", data="again")) for _ in range(3)]
    calls.append(scheduler.schedule(Job("taken", due_time="0s", data="last"), overwrite=True))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results[:20])
    assert all(isinstance(r, JobExistsError) for r in results[20:23])
    assert not isinstance(results[23], BaseException)
    assert len(await scheduler.list_jobs("new-")) == 20
    [trigger] = await recorder.wait_for(1)
    assert (trigger.name, trigger.data) == ("taken", "last")


async def test_overwrite_moves_the_fire_time(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    await scheduler.schedule(Job("move", due_time="300ms"))
    moved = now() + timedelta(seconds=1)
    await scheduler.schedule(Job("move", due_time=rfc3339(moved)), overwrite=True)
    [trigger] = await recorder.wait_for(1, timeout=5)
    assert trigger.fired_at >= moved
    await asyncio.sleep(0.3)
    assert len(recorder.triggers) == 1


async def test_delete_cancels(scheduler: EmbeddedJobScheduler, recorder: RecordingHandler) -> None:
    await scheduler.schedule(Job("gone", due_time="400ms"))
    await scheduler.schedule(Job("kept", due_time="600ms"))
    assert await scheduler.delete("gone") is True
    assert await scheduler.delete("gone") is False
    await recorder.wait_for(1)
    await asyncio.sleep(0.3)
    assert recorder.names() == ["kept"]


async def test_list_by_prefix_in_name_order_with_paging(scheduler: EmbeddedJobScheduler) -> None:
    names = ["a-3", "a-1", "b-1", "a-2", "a_%"]
    await scheduler.schedule_many([Job(n, due_time="1h") for n in names])
    assert [s.job.name for s in await scheduler.list_jobs("a-")] == ["a-1", "a-2", "a-3"]
    assert [s.job.name for s in await scheduler.list_jobs("a-", limit=2)] == ["a-1", "a-2"]
    assert [s.job.name for s in await scheduler.list_jobs("a-", after="a-2")] == ["a-3"]
    assert [s.job.name for s in await scheduler.list_jobs("a_")] == [
        "a_%"
    ]  # LIKE wildcards are literal
    assert len(await scheduler.list_jobs()) == 5
    assert await scheduler.delete_prefix("a-") == 3
    assert [s.job.name for s in await scheduler.list_jobs()] == ["a_%", "b-1"]


async def test_invalid_jobs_are_refused_and_store_nothing(scheduler: EmbeddedJobScheduler) -> None:
    bad = [
        Job("no-schedule"),
        Job("five-fields", schedule="0 30 9 * *"),
        Job("bad-zone", schedule="CRON_TZ=Mars/Olympus 0 0 9 * * *"),
        Job("bad-due", due_time="tomorrow"),
        Job("ttl-alone", due_time="1s", ttl="1h"),
        Job("repeats-alone", due_time="1s", repeats=3),
    ]
    for job in bad:
        with pytest.raises(ScheduleError):
            await scheduler.schedule(job)
        assert await scheduler.get(job.name) is None


async def test_batch_is_all_or_nothing(scheduler: EmbeddedJobScheduler) -> None:
    await scheduler.schedule(Job("taken", due_time="1h"))
    with pytest.raises(ScheduleError):
        await scheduler.schedule_many([Job("ok-1", due_time="1h"), Job("broken", due_time="soon")])
    with pytest.raises(JobExistsError):
        await scheduler.schedule_many([Job("ok-2", due_time="1h"), Job("taken", due_time="1h")])
    with pytest.raises(ValueError):
        await scheduler.schedule_many([Job("twice", due_time="1h"), Job("twice", due_time="2h")])
    assert [s.job.name for s in await scheduler.list_jobs()] == ["taken"]


async def test_every_with_repeats_fires_on_its_grid_then_ends(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    await scheduler.schedule(Job("tick", schedule="@every 300ms", repeats=3))
    triggers = await recorder.wait_for(3)
    ticks = [t.scheduled_at for t in triggers]
    step = timedelta(milliseconds=300)
    assert ticks == sorted(set(ticks))
    assert all((tick - ticks[0]) % step == timedelta(0) for tick in ticks)  # on the grid
    assert all(t.fired_at >= t.scheduled_at for t in triggers)
    await asyncio.sleep(0.7)
    assert len(recorder.triggers) == 3
    assert await scheduler.get("tick") is None


async def test_cron_with_seconds_and_ttl(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    await scheduler.schedule(Job("cron", schedule="* * * * * *", ttl="2500ms"))
    await asyncio.sleep(3.5)
    triggers = list(recorder.triggers)
    assert 2 <= len(triggers) <= 3
    for t in triggers:
        assert t.scheduled_at.microsecond == 0
        assert t.fired_at >= t.scheduled_at
    assert await scheduler.get("cron") is None


async def test_schedule_with_due_time_fires_first_at_due_time(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    due = now() + timedelta(milliseconds=200)
    await scheduler.schedule(Job("both", schedule="@every 500ms", due_time=rfc3339(due), repeats=2))
    first, second = await recorder.wait_for(2)
    assert first.scheduled_at == due
    assert second.scheduled_at == due + timedelta(milliseconds=500)


async def test_retries_keep_the_tick_then_dead_letter_and_replay(
    make_store: Callable[[], JobStore],
) -> None:
    healthy = False
    recorder = RecordingHandler(fail=lambda t: not healthy)
    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", recorder)
    await s.start()
    try:
        policy = FailurePolicy("constant", timedelta(milliseconds=100), 2)
        await s.schedule(Job("flaky", due_time="0s", data={"x": 1}, failure_policy=policy))
        triggers = await recorder.wait_for(3)
        assert [t.attempt for t in triggers] == [1, 2, 3]
        assert len({t.scheduled_at for t in triggers}) == 1
        assert triggers[1].fired_at - triggers[0].fired_at >= timedelta(milliseconds=100)
        [letter] = await dead_letters(s)
        assert letter.name == "flaky" and letter.attempts == 3 and letter.data == {"x": 1}
        assert "refused" in letter.error
        assert await s.get("flaky") is None
        await asyncio.sleep(0.3)
        assert len(recorder.triggers) == 3

        with pytest.raises(RuntimeError):
            await s.replay(letter.id)
        [again] = await s.dead_letters()
        assert again.attempts == 4
        healthy = True
        await s.replay(letter.id)
        assert recorder.triggers[-1].data == {"x": 1}
        assert await s.dead_letters() == []
    finally:
        await s.stop()


async def test_drop_policy_gives_up_after_one_attempt(make_store: Callable[[], JobStore]) -> None:
    recorder = RecordingHandler(fail=lambda t: True)
    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", recorder)
    await s.start()
    try:
        await s.schedule(Job("fragile", due_time="0s", failure_policy=FailurePolicy.drop()))
        await recorder.wait_for(1)
        [letter] = await dead_letters(s)
        assert letter.name == "fragile" and letter.attempts == 1
        assert len(recorder.triggers) == 1
        assert await s.discard((await s.dead_letters())[0].id) is True
        assert await s.dead_letters() == []
    finally:
        await s.stop()


async def test_failure_then_success_delivers_once_more(make_store: Callable[[], JobStore]) -> None:
    recorder = RecordingHandler(fail=lambda t: t.attempt == 1)
    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", recorder)
    await s.start()
    try:
        policy = FailurePolicy("constant", timedelta(milliseconds=50), 3)
        await s.schedule(Job("second-time", due_time="0s", failure_policy=policy))
        await recorder.wait_for(2)
        await asyncio.sleep(0.4)
        assert [t.attempt for t in recorder.triggers] == [1, 2]
        assert await s.dead_letters() == []
    finally:
        await s.stop()


async def test_triggers_the_app_answered_404_are_counted_on_a_recurring_job(
    make_store: Callable[[], JobStore],
) -> None:
    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", RecordingHandler())
    s.add_handler("gone-", RecordingHandler(answer=Answer.APP_NOT_FOUND))
    await s.start()
    started = now()
    try:
        await s.schedule_many(
            [
                Job("gone-every", schedule="@every 200ms"),
                Job("gone-once", due_time="0s"),
                Job("fine", schedule="@every 200ms"),
            ]
        )
        gone = await _state_when(s, "gone-every", lambda st: st.app_not_found >= 2)
        assert gone.app_not_found_at is not None and started < gone.app_not_found_at <= now()
        assert gone.fired >= gone.app_not_found and gone.attempt == 0
        fine = await s.get("fine")
        assert fine is not None and fine.fired >= 1
        assert (fine.app_not_found, fine.app_not_found_at) == (0, None)
        # a one-shot job's 404 counts as delivered: the job is gone, with no dead letter
        assert await s.get("gone-once") is None and await s.dead_letters() == []
    finally:
        await s.stop()

    reopened = EmbeddedJobScheduler(make_store())
    await reopened.start()
    try:
        stored = await reopened.get("gone-every")
        assert stored is not None and stored.app_not_found >= gone.app_not_found
        await reopened.schedule(Job("gone-every", schedule="@every 1h"), overwrite=True)
        replaced = await reopened.get("gone-every")
        assert replaced is not None
        assert (replaced.app_not_found, replaced.app_not_found_at) == (0, None)
    finally:
        await reopened.stop()


async def _state_when(
    s: EmbeddedJobScheduler, name: str, check: Callable[[JobState], bool], timeout: float = 10.0
) -> JobState:
    deadline = asyncio.get_running_loop().time() + timeout
    while (state := await s.get(name)) is None or not check(state):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {name!r} is {state}")
        await asyncio.sleep(0.05)
    return state


async def test_longest_prefix_handler_wins(make_store: Callable[[], JobStore]) -> None:
    general, reminders, urgent = RecordingHandler(), RecordingHandler(), RecordingHandler()
    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", general)
    s.add_handler("reminder-", reminders)
    s.add_handler("reminder-urgent-", urgent)
    await s.start()
    try:
        await s.schedule_many(
            [Job(n, due_time="0s") for n in ["other", "reminder-1", "reminder-urgent-1"]]
        )
        await general.wait_for(1)
        await reminders.wait_for(1)
        await urgent.wait_for(1)
        assert (general.names(), reminders.names(), urgent.names()) == (
            ["other"],
            ["reminder-1"],
            ["reminder-urgent-1"],
        )
    finally:
        await s.stop()


async def test_slow_handler_does_not_delay_other_jobs(make_store: Callable[[], JobStore]) -> None:
    fired: dict[str, Trigger] = {}

    async def handler(trigger: Trigger) -> None:
        fired[trigger.name] = trigger
        if trigger.name == "slow":
            await asyncio.sleep(3)

    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", handler)
    await s.start()
    try:
        await s.schedule(Job("slow", due_time="0s"))
        await eventually(lambda: "slow" in fired)
        await s.schedule(Job("fast", due_time="200ms"))
        await eventually(lambda: "fast" in fired, timeout=2.5)
        assert fired["fast"].lateness < timedelta(seconds=1)
    finally:
        await s.stop()


async def test_a_job_never_overlaps_itself_and_overrun_ticks_coalesce(
    make_store: Callable[[], JobStore],
) -> None:
    running = 0
    overlaps = 0
    triggers: list[Trigger] = []

    async def handler(trigger: Trigger) -> None:
        nonlocal running, overlaps
        running += 1
        overlaps += running > 1
        triggers.append(trigger)
        await asyncio.sleep(0.45)
        running -= 1

    s = EmbeddedJobScheduler(make_store())
    s.add_handler("", handler)
    await s.start()
    try:
        await s.schedule(Job("busy", schedule="@every 100ms"))
        await asyncio.sleep(1.6)
    finally:
        await s.stop()
    assert overlaps == 0
    assert 2 <= len(triggers) <= 5  # not 16: ticks missed while running are coalesced
    ticks = [t.scheduled_at for t in triggers]
    assert ticks == sorted(set(ticks))


async def test_hundreds_of_jobs_each_fire_once_never_early(
    scheduler: EmbeddedJobScheduler, recorder: RecordingHandler
) -> None:
    start = now() + timedelta(milliseconds=300)
    jobs = [
        Job(f"burst-{i:03d}", due_time=rfc3339(start + timedelta(milliseconds=7 * i)))
        for i in range(300)
    ]
    await scheduler.schedule_many(jobs)
    triggers = await recorder.wait_for(300, timeout=20)
    await asyncio.sleep(0.3)
    assert sorted(recorder.names()) == [j.name for j in jobs]  # each exactly once
    assert len(triggers) == 300 and recorder.never_early()
    assert await scheduler.list_jobs() == []


async def test_restart_fires_missed_jobs_late_and_coalesces_recurring(
    make_store: Callable[[], JobStore],
) -> None:
    recorder = RecordingHandler()
    first = EmbeddedJobScheduler(make_store())
    first.add_handler("", recorder)
    await first.start()
    t0 = now()
    soon = rfc3339(t0 + timedelta(seconds=1))
    await first.schedule(Job("missed", due_time=soon, data="late"))
    await first.schedule(Job("recurring", schedule="@every 200ms", due_time=soon))
    await first.schedule(Job("future", due_time=rfc3339(t0 + timedelta(seconds=4))))
    await first.stop()
    assert recorder.triggers == []
    await asyncio.sleep((t0 + timedelta(seconds=2.2) - now()).total_seconds())
    # "missed" and about six ticks of "recurring" came due while down

    second = EmbeddedJobScheduler(make_store())
    second.add_handler("", recorder)
    restarted = now()
    await second.start()
    try:
        await eventually(lambda: {"missed", "recurring"} <= set(recorder.names()))
        missed = next(t for t in recorder.triggers if t.name == "missed")
        assert missed.late and missed.data == "late"
        late_ticks = [t for t in recorder.triggers if t.name == "recurring" and t.late]
        assert len(late_ticks) == 1  # coalesced: one trigger for the missed ticks
        await eventually(lambda: "future" in recorder.names(), timeout=6)
        future = next(t for t in recorder.triggers if t.name == "future")
        assert not future.late and future.fired_at >= future.scheduled_at
        on_time = [t for t in recorder.triggers if t.name == "recurring" and not t.late]
        assert on_time and all(t.scheduled_at > restarted for t in on_time)
    finally:
        await second.stop()


async def test_small_window_under_churn_fires_each_job_once(
    make_store: Callable[[], JobStore],
) -> None:
    """A window far smaller than the job count: refills race with schedules, overwrites and
    deletes, and still every surviving job fires exactly once and deleted ones never."""
    recorder = RecordingHandler()
    s = EmbeddedJobScheduler(make_store(), window_size=8)
    s.add_handler("", recorder)
    await s.start()
    try:
        start = now() + timedelta(milliseconds=300)

        def at(ms: int) -> str:
            return rfc3339(start + timedelta(milliseconds=ms))

        await s.schedule_many([Job(f"a-{i:03d}", due_time=at(10 * i)) for i in range(150)])
        await s.schedule_many([Job(f"b-{i:03d}", due_time=at(10 * i + 5)) for i in range(150)])
        for i in range(0, 150, 10):
            await s.delete(f"b-{i:03d}")
            await s.schedule(Job(f"a-{i:03d}", due_time=at(1600 + i)), overwrite=True)
        await s.delete_prefix("b-14")
        expected = {f"a-{i:03d}" for i in range(150)} | {
            f"b-{i:03d}" for i in range(150) if i % 10 and not 140 <= i < 150
        }
        await recorder.wait_for(len(expected), timeout=20)
        await asyncio.sleep(0.5)
        assert sorted(recorder.names()) == sorted(expected)
        assert recorder.never_early()
        moved = {t.name: t.scheduled_at for t in recorder.triggers if t.name.startswith("a-")}
        assert moved["a-010"] == start + timedelta(milliseconds=1610)
    finally:
        await s.stop()
