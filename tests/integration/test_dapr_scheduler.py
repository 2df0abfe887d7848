"""The `JobScheduler` contract run against `DaprJobScheduler` on real daprd 1.16.5 + scheduler.

One scheduler process (embedded etcd) serves the module; each test gets its own app id, a
fresh daprd, a sqlite mirror and a small in-process FastAPI app (uvicorn in the test's
event loop) that mounts duetime's `POST /job/{name}` route with the adapter as its sink.
Every `POST /job/...` daprd sends is logged with the status the route answered, so the
tests check what daprd really did, not only what reached a handler.

Timing bounds are generous (a busy 2-core machine); what is asserted strictly is ordering
and counts: never early, exactly once, nothing lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duetime.api.errors import install_error_handlers
from duetime.api.triggers import trigger_router
from duetime.jobs import Answer, FailurePolicy, Job, JobExistsError, ScheduleError
from duetime.jobs.dapr import DaprJobScheduler, DaprSidecar, SidecarUnavailable
from duetime.jobs.port import TriggerHandler
from duetime.jobs.sql_store import SqlJobStore
from duetime.localdapr import Daprd, DaprdPorts, Scheduler, free_port
from duetime.testing import RecordingHandler
from tests.integration.test_scheduler_contract import eventually, now, rfc3339

_app_ids = itertools.count(1)


# -- the app daprd calls ------------------------------------------------------------------
@dataclass(frozen=True)
class Post:
    """One `POST /job/{name}` daprd sent to the app, and the route's answer."""

    name: str
    status: int
    at: datetime  # wall clock on arrival


class PostLog:
    """ASGI wrapper that logs every trigger request and the status it was answered with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.posts: list[Post] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/job/"):
            await self.app(scope, receive, send)
            return
        at = now()
        status = 0

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.posts.append(Post(scope["path"].removeprefix("/job/"), status, at))

    def of(self, name: str) -> list[Post]:
        return [p for p in self.posts if p.name == name]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's signal handlers alone
        yield


@dataclass
class Stack:
    sched: DaprJobScheduler
    daprd: Daprd
    log: PostLog
    app_id: str
    work_dir: Path
    scheduler_address: str
    extra: dict[str, Any] = field(default_factory=dict)

    async def stop_daprd(self) -> None:
        await asyncio.to_thread(self.daprd.stop)

    async def start_daprd(self) -> None:
        """A new daprd for the same app id, on the same ports (the sidecar URL stays)."""
        old = self.daprd
        self.daprd = Daprd(
            self.work_dir / f"daprd-{old.pid}",
            app_id=self.app_id,
            app_port=old.app_port,
            scheduler_address=self.scheduler_address,
            ports=old.ports,
            app_api_token=old.app_api_token,
            api_token=old.api_token,
        )
        await asyncio.to_thread(self.daprd.start, wait_for_app=True)


class MakeStack(Protocol):
    def __call__(
        self,
        handlers: dict[str, TriggerHandler] | None = ...,
        *,
        api_token: str | None = ...,
        sidecar_token: str | None = ...,
        app_api_token: str | None = ...,
        settings_app_token: str | None = ...,
    ) -> Awaitable[Stack]: ...


class SchedulerHolder:
    """The module's scheduler process; a test may kill it and start a successor."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc = Scheduler(data_dir)

    @property
    def address(self) -> str:
        return self.proc.address

    def restart(self) -> None:
        self.proc = Scheduler(self.data_dir, ports=self.proc.ports).start()


@pytest.fixture(scope="module")
def dapr_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerHolder]:
    holder = SchedulerHolder(tmp_path_factory.mktemp("dapr-scheduler"))
    holder.proc.start()
    try:
        yield holder
    finally:
        holder.proc.stop()


@pytest.fixture
async def make_stack(dapr_scheduler: SchedulerHolder, tmp_path: Path) -> AsyncIterator[MakeStack]:
    async with AsyncExitStack() as exits:

        async def make(
            handlers: dict[str, TriggerHandler] | None = None,
            *,
            api_token: str | None = None,
            sidecar_token: str | None = None,
            app_api_token: str | None = None,
            settings_app_token: str | None = None,
        ) -> Stack:
            app_id = f"contract-{next(_app_ids)}"
            work_dir = tmp_path / app_id
            daprd_ports = DaprdPorts()
            sidecar = DaprSidecar(f"http://127.0.0.1:{daprd_ports.http}", token=sidecar_token)
            sched = DaprJobScheduler(SqlJobStore(f"sqlite:///{tmp_path}/{app_id}.db"), sidecar)
            for prefix, handler in (handlers or {}).items():
                sched.add_handler(prefix, handler)
            await sched.start()
            exits.push_async_callback(sched.stop)

            app = FastAPI()
            install_error_handlers(app)
            app.include_router(trigger_router())
            app.state.trigger_sink = sched
            app.state.settings = SimpleNamespace(api_token=None, app_api_token=settings_app_token)
            log = PostLog(app)
            port = free_port()
            config = uvicorn.Config(
                log,
                host="127.0.0.1",
                port=port,
                lifespan="off",
                ws="none",
                log_level="warning",
                timeout_graceful_shutdown=2,
            )
            server = _Server(config)
            serving = asyncio.create_task(server.serve())

            async def stop_server() -> None:
                server.should_exit = True
                await serving

            exits.push_async_callback(stop_server)
            await eventually(lambda: server.started or serving.done(), timeout=10)
            assert server.started, "the app did not start"

            daprd = Daprd(
                work_dir / "daprd",
                app_id=app_id,
                app_port=port,
                scheduler_address=dapr_scheduler.address,
                ports=daprd_ports,
                app_api_token=app_api_token,
                api_token=api_token,
            )
            stack = Stack(sched, daprd, log, app_id, work_dir, dapr_scheduler.address)

            async def stop_daprd() -> None:
                await stack.stop_daprd()

            exits.push_async_callback(stop_daprd)
            await asyncio.to_thread(daprd.start, wait_for_app=True)
            return stack

        yield make


async def dapr_copy(stack: Stack, name: str) -> dict[str, Any] | None:
    return await stack.sched.sidecar.get(name)


async def gone_from_dapr(stack: Stack, name: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await dapr_copy(stack, name) is not None:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"daprd still has job {name!r}")
        await asyncio.sleep(0.1)


# -- scheduling, reading, overwriting, deleting ------------------------------------------
async def test_one_shot_fires_once_never_early_then_disappears(make_stack: MakeStack) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    due = now() + timedelta(milliseconds=1500)
    state = await stack.sched.schedule(Job("once", due_time=rfc3339(due), data={"n": 1}))
    assert state.next_fire_at == due
    [trigger] = await recorder.wait_for(1)
    assert trigger.name == "once" and trigger.data == {"n": 1}
    assert trigger.scheduled_at == due
    assert recorder.received_at[0] >= due and recorder.never_early()
    assert trigger.fired_at >= due
    assert not trigger.late and trigger.attempt == 1
    await asyncio.sleep(0.5)
    assert len(recorder.triggers) == 1
    assert [p.status for p in stack.log.of("once")] == [200]
    assert stack.log.posts[0].at >= due
    assert await stack.sched.get("once") is None
    await gone_from_dapr(stack, "once")


async def test_get_echoes_the_job_as_sent(make_stack: MakeStack) -> None:
    stack = await make_stack()
    data = ["a", 1, None, True, {"b": 2.5}]
    job = Job(
        "echo",
        schedule="@every 1h",
        due_time="10m",
        repeats=5,
        ttl="PT3H",
        data=data,
        failure_policy=FailurePolicy("constant", timedelta(seconds=5), None),
    )
    await stack.sched.schedule(job)
    state = await stack.sched.get("echo")
    assert state is not None
    assert state.job == job
    assert timedelta(minutes=9) < state.next_fire_at - now() <= timedelta(minutes=10)
    assert state.fired == 0 and state.attempt == 0
    # daprd holds the same job (unlimited retries: no maxRetries)
    copy = await dapr_copy(stack, "echo")
    assert copy is not None
    assert (copy["schedule"], copy["dueTime"], copy["repeats"], copy["ttl"]) == (
        "@every 1h",
        "10m",
        5,
        "PT3H",
    )
    assert copy["data"]["value"] == data
    assert copy["failurePolicy"] == {"constant": {"interval": "5s"}}


async def test_data_of_any_json_type_is_delivered_as_is(make_stack: MakeStack) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    values: list[Any] = [None, "text", 42, 1.5, True, [1, "x"], {"k": {"n": [None]}}, ""]
    await stack.sched.schedule_many(
        [Job(f"data-{i}", due_time="0s", data=v) for i, v in enumerate(values)]
    )
    await recorder.wait_for(len(values))
    await asyncio.sleep(0.3)
    got = {t.name: t.data for t in recorder.triggers}
    assert len(recorder.triggers) == len(values)
    for i, value in enumerate(values):
        assert json.dumps(got[f"data-{i}"]) == json.dumps(value)  # same value, same type
    assert recorder.never_early()


async def test_existing_name_needs_overwrite(make_stack: MakeStack) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    await stack.sched.schedule(Job("dup", due_time="1h", data="old"))
    with pytest.raises(JobExistsError):
        await stack.sched.schedule(Job("dup", due_time="0s", data="new"))
    state = await stack.sched.get("dup")
    assert state is not None and state.job.data == "old"
    copy = await dapr_copy(stack, "dup")
    assert copy is not None and copy["data"]["value"] == "old" and copy["dueTime"] == "1h"
    await stack.sched.schedule(Job("dup", due_time="0s", data="new"), overwrite=True)
    [trigger] = await recorder.wait_for(1)
    assert trigger.data == "new"
    await asyncio.sleep(0.3)
    assert len(stack.log.of("dup")) == 1


async def test_overwrite_moves_the_fire_time(make_stack: MakeStack) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    await stack.sched.schedule(Job("move", due_time="1s"))
    moved = now() + timedelta(milliseconds=2500)
    await stack.sched.schedule(Job("move", due_time=rfc3339(moved)), overwrite=True)
    [trigger] = await recorder.wait_for(1, timeout=8)
    assert trigger.scheduled_at == moved
    assert recorder.received_at[0] >= moved
    await asyncio.sleep(0.5)
    assert len(recorder.triggers) == 1
    # daprd itself sent one trigger, at the new time: the old one was really replaced
    [post] = stack.log.of("move")
    assert post.at >= moved


async def test_delete_cancels(make_stack: MakeStack) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    await stack.sched.schedule(Job("gone", due_time="1s"))
    await stack.sched.schedule(Job("kept", due_time="1500ms"))
    assert await stack.sched.delete("gone") is True
    assert await stack.sched.delete("gone") is False
    assert await dapr_copy(stack, "gone") is None
    await recorder.wait_for(1)
    await asyncio.sleep(0.5)
    assert recorder.names() == ["kept"]
    assert [p.name for p in stack.log.posts] == ["kept"]  # daprd never sent "gone"


async def test_list_by_prefix_in_name_order_with_paging(make_stack: MakeStack) -> None:
    stack = await make_stack()
    s = stack.sched
    names = ["a-3", "a-1", "b-1", "a-2", "a_1", "ab1"]
    await s.schedule_many([Job(n, due_time="1h") for n in names])
    assert [j.job.name for j in await s.list_jobs("a-")] == ["a-1", "a-2", "a-3"]
    assert [j.job.name for j in await s.list_jobs("a-", limit=2)] == ["a-1", "a-2"]
    assert [j.job.name for j in await s.list_jobs("a-", after="a-2")] == ["a-3"]
    assert [j.job.name for j in await s.list_jobs("a_")] == ["a_1"]  # `_` is literal
    assert len(await s.list_jobs()) == 6
    for name in names:
        assert await dapr_copy(stack, name) is not None
    assert await s.delete_prefix("a-") == 3
    assert [j.job.name for j in await s.list_jobs()] == ["a_1", "ab1", "b-1"]
    for name in ["a-1", "a-2", "a-3"]:
        assert await dapr_copy(stack, name) is None
    assert await dapr_copy(stack, "a_1") is not None


BAD_NAMES = ["jöb", "a@b", "a#b", "a|b", "n" * 254]
ODD_GOOD_NAMES = ["MyJob", "my_job", "my:job", "my job", "n" * 253]


async def test_invalid_jobs_are_refused_and_store_nothing(make_stack: MakeStack) -> None:
    stack = await make_stack()
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
            await stack.sched.schedule(job)
        assert await stack.sched.get(job.name) is None
        assert await dapr_copy(stack, job.name) is None
    for name in BAD_NAMES:
        with pytest.raises(ScheduleError):
            await stack.sched.schedule(Job(name, due_time="1h"))
        assert await stack.sched.get(name) is None
    assert await stack.sched.list_jobs() == []


async def test_the_name_rule_is_daprds(make_stack: MakeStack) -> None:
    """The adapter refuses exactly the names daprd 1.16.5 refuses (sent to daprd directly),
    and accepts the odd ones daprd accepts."""
    stack = await make_stack()
    async with httpx.AsyncClient(base_url=stack.daprd.http_url) as raw:
        for name in BAD_NAMES:
            answer = await raw.post(
                f"/v1.0-alpha1/jobs/{quote(name, safe='')}", json={"dueTime": "1h", "data": 1}
            )
            assert answer.status_code in (400, 500), name
            assert answer.json()["errorCode"].startswith("DAPR_SCHEDULER_"), name
    for name in ODD_GOOD_NAMES:
        await stack.sched.schedule(Job(name, due_time="1h", data=name))
        copy = await dapr_copy(stack, name)
        assert copy is not None and copy["data"]["value"] == name
    assert sorted(j.job.name for j in await stack.sched.list_jobs()) == sorted(ODD_GOOD_NAMES)


async def test_batch_is_all_or_nothing(make_stack: MakeStack) -> None:
    stack = await make_stack()
    s = stack.sched
    await s.schedule(Job("taken", due_time="1h"))
    with pytest.raises(ScheduleError):
        await s.schedule_many([Job("ok-1", due_time="1h"), Job("broken", due_time="soon")])
    with pytest.raises(JobExistsError):
        await s.schedule_many([Job("ok-2", due_time="1h"), Job("taken", due_time="1h")])
    with pytest.raises(ScheduleError):
        await s.schedule_many([Job("ok-3", due_time="1h"), Job("a@b", due_time="1h")])
    with pytest.raises(ValueError):
        await s.schedule_many([Job("twice", due_time="1h"), Job("twice", due_time="2h")])
    assert [j.job.name for j in await s.list_jobs()] == ["taken"]
    for name in ["ok-1", "ok-2", "ok-3", "broken", "twice"]:
        assert await dapr_copy(stack, name) is None
    assert await dapr_copy(stack, "taken") is not None


async def test_failed_overwrite_batch_leaves_the_old_job_firing(make_stack: MakeStack) -> None:
    """A batch that daprd refuses part of is undone: the job it would have replaced still
    fires once, at its old time, with its old data."""
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    s = stack.sched
    old_due = now() + timedelta(milliseconds=2500)
    await s.schedule(Job("keep", due_time=rfc3339(old_due), data="old"))
    huge = "x" * (4 * 1024 * 1024 + 10)  # over daprd's 4 MiB body limit: daprd answers 400
    with pytest.raises(SidecarUnavailable):
        await s.schedule_many(
            [Job("keep", due_time="0s", data="new"), Job("huge", due_time="1h", data=huge)],
            overwrite=True,
        )
    state = await s.get("keep")
    assert state is not None and state.job.data == "old" and state.next_fire_at == old_due
    assert await s.get("huge") is None
    await asyncio.sleep((old_due - now()).total_seconds() + 2)
    assert [(t.name, t.data) for t in recorder.triggers] == [("keep", "old")]
    assert recorder.received_at[0] >= old_due
    assert await s.get("keep") is None


# -- recurrence ----------------------------------------------------------------------------
async def test_every_with_repeats_fires_twice_on_its_grid_then_ends(
    make_stack: MakeStack,
) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    await stack.sched.schedule(Job("tick", schedule="@every 1s", repeats=2))
    first, second = await recorder.wait_for(2, timeout=8)
    assert second.scheduled_at - first.scheduled_at == timedelta(seconds=1)
    assert recorder.never_early()
    await asyncio.sleep(1.5)
    assert len(recorder.triggers) == 2
    assert [p.status for p in stack.log.of("tick")] == [200, 200]
    assert await stack.sched.get("tick") is None
    await gone_from_dapr(stack, "tick")


# -- failures ------------------------------------------------------------------------------
async def test_retries_keep_the_tick_then_dead_letter_and_replay(make_stack: MakeStack) -> None:
    healthy = False
    recorder = RecordingHandler(fail=lambda t: not healthy)
    stack = await make_stack({"": recorder})
    s = stack.sched
    policy = FailurePolicy("constant", timedelta(seconds=1), 2)
    await s.schedule(Job("flaky", due_time="0s", data={"x": 1}, failure_policy=policy))
    triggers = await recorder.wait_for(3, timeout=10)
    assert [t.attempt for t in triggers] == [1, 2, 3]
    assert len({t.scheduled_at for t in triggers}) == 1
    at = recorder.received_at
    assert at[1] - at[0] >= timedelta(milliseconds=900)
    assert at[2] - at[1] >= timedelta(milliseconds=900)
    await eventually(lambda: len(stack.log.of("flaky")) == 3)
    [letter] = await s.dead_letters()
    assert letter.name == "flaky" and letter.attempts == 3 and letter.data == {"x": 1}
    assert "refused" in letter.error
    assert await s.get("flaky") is None
    await asyncio.sleep(1.5)  # daprd was told 3 retries: the 3rd attempt's 200 stopped it
    assert len(recorder.triggers) == 3
    assert [p.status for p in stack.log.of("flaky")] == [500, 500, 200]
    await gone_from_dapr(stack, "flaky")

    with pytest.raises(RuntimeError):
        await s.replay(letter.id)
    [again] = await s.dead_letters()
    assert again.attempts == 4
    healthy = True
    await s.replay(letter.id)
    assert recorder.triggers[-1].data == {"x": 1} and len(recorder.triggers) == 5
    assert await s.dead_letters() == []


async def test_sub_second_retry_interval_is_honoured(make_stack: MakeStack) -> None:
    recorder = RecordingHandler(fail=lambda t: True)
    stack = await make_stack({"": recorder})
    policy = FailurePolicy("constant", timedelta(milliseconds=500), 1)
    await stack.sched.schedule(Job("quick", due_time="0s", failure_policy=policy))
    copy = await dapr_copy(stack, "quick")
    assert copy is not None
    # sent as "0.5s" (one retry more than the policy); daprd shows it as a Duration
    assert copy["failurePolicy"] == {"constant": {"interval": "0.500s", "maxRetries": 2}}
    await recorder.wait_for(2)
    gap = recorder.received_at[1] - recorder.received_at[0]
    assert timedelta(milliseconds=450) <= gap < timedelta(milliseconds=950)
    await eventually(lambda: len(stack.log.of("quick")) == 2)
    [letter] = await stack.sched.dead_letters()
    assert letter.attempts == 2
    await asyncio.sleep(1)
    assert [p.status for p in stack.log.of("quick")] == [500, 200]


async def test_drop_policy_gives_up_after_one_attempt(make_stack: MakeStack) -> None:
    recorder = RecordingHandler(fail=lambda t: True)
    stack = await make_stack({"": recorder})
    s = stack.sched
    await s.schedule(Job("fragile", due_time="0s", failure_policy=FailurePolicy.drop()))
    await recorder.wait_for(1)
    await eventually(lambda: len(stack.log.of("fragile")) == 1)
    [letter] = await s.dead_letters()
    assert letter.name == "fragile" and letter.attempts == 1
    # daprd is told one retry, but the first attempt was dead-lettered and answered 200
    await asyncio.sleep(1.5)
    assert len(recorder.triggers) == 1
    assert [p.status for p in stack.log.of("fragile")] == [200]
    assert await s.get("fragile") is None
    assert await s.discard(letter.id) is True
    assert await s.dead_letters() == []


# -- routing -------------------------------------------------------------------------------
async def test_longest_prefix_handler_wins(make_stack: MakeStack) -> None:
    general, reminders, urgent = RecordingHandler(), RecordingHandler(), RecordingHandler()
    stack = await make_stack({"": general, "reminder-": reminders, "reminder-urgent-": urgent})
    await stack.sched.schedule_many(
        [Job(n, due_time="0s") for n in ["other", "reminder-1", "reminder-urgent-1"]]
    )
    await general.wait_for(1)
    await reminders.wait_for(1)
    await urgent.wait_for(1)
    await asyncio.sleep(0.3)
    assert (general.names(), reminders.names(), urgent.names()) == (
        ["other"],
        ["reminder-1"],
        ["reminder-urgent-1"],
    )


async def test_a_trigger_no_handler_owns_is_answered_404_once(make_stack: MakeStack) -> None:
    reminders = RecordingHandler()
    stack = await make_stack({"reminder-": reminders})
    await stack.sched.schedule_many([Job(n, due_time="0s") for n in ["other", "reminder-1"]])
    await reminders.wait_for(1)
    await eventually(lambda: len(stack.log.of("other")) == 1)
    await asyncio.sleep(1.5)  # daprd takes 404 as "not mine": no retry
    assert [p.status for p in stack.log.of("other")] == [404]
    assert reminders.names() == ["reminder-1"]
    assert await stack.sched.get("other") is None
    assert await stack.sched.dead_letters() == []
    await gone_from_dapr(stack, "other")


async def test_triggers_the_app_answered_404_are_counted_on_the_mirror(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack({"": RecordingHandler(answer=Answer.APP_NOT_FOUND)})
    await stack.sched.schedule(Job("gone", schedule="@every 1s"))
    deadline = asyncio.get_running_loop().time() + 10
    while not ((listed := await stack.sched.list_jobs()) and listed[0].app_not_found >= 2):
        assert asyncio.get_running_loop().time() < deadline, listed
        await asyncio.sleep(0.1)
    assert listed[0].app_not_found_at is not None and listed[0].fired >= 2
    assert {p.status for p in stack.log.of("gone")} == {200}  # daprd is told it was delivered


# -- crashes and downtime ------------------------------------------------------------------
async def test_scheduler_killed_and_restarted_loses_nothing(
    make_stack: MakeStack, dapr_scheduler: SchedulerHolder
) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    t0 = now()
    dues = {
        "k-during": t0 + timedelta(milliseconds=1200),  # comes due while the scheduler is down
        "k-after-1": t0 + timedelta(seconds=4),
        "k-after-2": t0 + timedelta(milliseconds=4500),
    }
    await stack.sched.schedule_many([Job(n, due_time=rfc3339(d), data=n) for n, d in dues.items()])
    await asyncio.to_thread(dapr_scheduler.proc.kill)
    await asyncio.sleep((t0 + timedelta(seconds=2) - now()).total_seconds())
    assert recorder.triggers == []
    await asyncio.to_thread(dapr_scheduler.restart)
    # the restarted scheduler waits for the killed one's leadership lease in etcd to
    # expire (about 20 s in 1.16.5) before it fires anything
    await recorder.wait_for(3, timeout=45)
    await asyncio.sleep(0.5)
    assert sorted(recorder.names()) == sorted(dues)  # each exactly once
    assert recorder.never_early()
    for trigger in recorder.triggers:
        assert trigger.scheduled_at == dues[trigger.name] and trigger.data == trigger.name
    assert sorted(p.name for p in stack.log.posts) == sorted(dues)
    assert all(p.at >= dues[p.name] for p in stack.log.posts)
    assert await stack.sched.list_jobs() == []


async def test_missed_ticks_while_daprd_is_down_reach_the_handler_once(
    make_stack: MakeStack,
) -> None:
    """Measured truth: daprd 1.16.5 sends every missed tick back to back when a daprd of
    the app id connects again; the mirror hands the first to the handler (late, for the
    first missed tick), moves past now, and acknowledges the rest unseen."""
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder})
    await stack.sched.schedule(Job("beat", schedule="@every 1s"))
    [first] = await recorder.wait_for(1, timeout=5)
    await stack.stop_daprd()
    await asyncio.sleep(3.2)  # ticks +1 s, +2 s, +3 s come due with no daprd connected
    posts_before = len(stack.log.posts)
    restarted = now()
    await stack.start_daprd()
    await asyncio.sleep(2.5)
    await stack.sched.delete("beat")

    after = stack.log.posts[posts_before:]
    burst = [p for p in after if p.at - after[0].at < timedelta(milliseconds=500)]
    assert len(burst) >= 3  # Dapr itself does not coalesce
    assert all(p.status == 200 for p in after)

    triggers = recorder.triggers
    ticks = [t.scheduled_at for t in triggers]
    assert ticks == sorted(set(ticks))  # no tick twice
    assert all((tick - first.scheduled_at) % timedelta(seconds=1) == timedelta(0) for tick in ticks)
    assert recorder.never_early()
    late = [t for t in triggers if t.scheduled_at < restarted]
    assert [t.scheduled_at for t in late] == [first.scheduled_at, ticks[1]]
    assert ticks[1] == first.scheduled_at + timedelta(seconds=1)  # the first missed tick
    assert triggers[1].late
    on_time = triggers[2:]
    assert on_time and all(t.scheduled_at > restarted and not t.late for t in on_time)
    assert len(triggers) < len(stack.log.posts)  # the rest of the burst was acknowledged


# -- tokens --------------------------------------------------------------------------------
async def test_api_token_is_required_by_daprd(make_stack: MakeStack, tmp_path: Path) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder}, api_token="s3cret", sidecar_token="s3cret")
    tokenless = DaprJobScheduler(
        SqlJobStore(f"sqlite:///{tmp_path}/tokenless.db"), DaprSidecar(stack.daprd.http_url)
    )
    await tokenless.start()
    try:
        with pytest.raises(SidecarUnavailable):
            await tokenless.schedule(Job("no-token", due_time="0s"))
        assert await tokenless.get("no-token") is None
    finally:
        await tokenless.stop()
    await stack.sched.schedule(Job("with-token", due_time="0s", data=1))
    [trigger] = await recorder.wait_for(1)
    assert trigger.name == "with-token"
    await asyncio.sleep(0.3)
    assert recorder.names() == ["with-token"]  # "no-token" never reached daprd


async def test_app_token_that_matches_lets_triggers_in(make_stack: MakeStack) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder}, app_api_token="apptok", settings_app_token="apptok")
    await stack.sched.schedule(Job("let-in", due_time="0s", data="x"))
    [trigger] = await recorder.wait_for(1)
    assert trigger.data == "x"
    await asyncio.sleep(0.3)
    assert [p.status for p in stack.log.of("let-in")] == [200]


async def test_app_token_that_differs_is_refused_401(make_stack: MakeStack) -> None:
    recorder = RecordingHandler()
    stack = await make_stack({"": recorder}, app_api_token="apptok", settings_app_token="other")
    await stack.sched.schedule(Job("shut-out", due_time="0s", failure_policy=FailurePolicy.drop()))
    # daprd is told drop = one retry: two attempts, both refused before reaching duetime
    await eventually(lambda: len(stack.log.of("shut-out")) == 2, timeout=8)
    await asyncio.sleep(1.5)
    assert [p.status for p in stack.log.of("shut-out")] == [401, 401]
    assert recorder.triggers == []
    assert await stack.sched.dead_letters() == []
    # nothing reached duetime, so its mirror still holds the job daprd has given up on
    assert await stack.sched.get("shut-out") is not None
    await gone_from_dapr(stack, "shut-out")
