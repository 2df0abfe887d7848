"""The embedded backend: jobs in the app's database, fired by an in-process loop.

Timing: the loop holds only the `window_size` earliest jobs in memory (a heap keyed by fire
time), sleeps until the earliest, re-checks the wall clock, and fires. Changes made through
this scheduler wake it at once. Nothing polls on a fixed interval: when the window drains,
the next `window_size` jobs are loaded.

Firing: `max_concurrency` long-lived firers take due triggers from one queue (one firer woken
per trigger), and a trigger's outcome joins the next group commit without the firer waiting
for it; the commit reports a whole batch back at once. Against a task and a future per
trigger, on 2 vCPUs with SQLite (bench/burst.py, bench/lateness.py): 3,000 jobs due at one
instant all started in 128–148 ms (was 361 ms), 100,000 in 5.7–5.9 s (was 15.6 s), and
lateness p99 at 1,000 jobs/s 2.1 ms (was 11.2 ms).

Durability: a job is committed before `schedule` returns. An attempt's outcome is written
after its handler returns (group-committed with other outcomes), so a crash in between
refires the trigger after restart: at-least-once.

One engine owns a database at a time; several processes firing the same jobs table are not
supported (use the Dapr backend to scale out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence

from duetime import logs, metrics
from duetime.clock import Clock, SystemClock
from duetime.db.batch import Batcher
from duetime.jobs.handlers import (
    HandlerRegistry,
    describe_error,
    replay_dead_letter,
    trigger_ended,
    trigger_span,
)
from duetime.jobs.lifecycle import new_row, settle
from duetime.jobs.model import Answer, DeadLetter, Job, JobExistsError, JobState, Trigger
from duetime.jobs.port import JobScheduler, TriggerHandler
from duetime.jobs.store import JobStore, Outcome, StoredJob
from duetime.jobs.window import DueWindow
from duetime.timefmt import from_micros
from duetime.tracing import Tracing, current

log = logging.getLogger(__name__)

_YIELD_EVERY = 64


class EmbeddedJobScheduler(JobScheduler):
    def __init__(
        self,
        store: JobStore,
        *,
        clock: Clock | None = None,
        max_concurrency: int = 100,
        window_size: int = 1000,
        tracing: Tracing | None = None,
    ) -> None:
        """`tracing`: a span per trigger attempt (None: tracing is off)."""
        self._store = store
        self._tracing = tracing
        self._clock = clock or SystemClock()
        self._handlers = HandlerRegistry()
        self._max_concurrency = max_concurrency
        self._window = DueWindow(window_size)
        self._inflight: dict[str, int] = {}  # name → generation of the running attempt
        # running attempts (name → generation) whose job was replaced or deleted meanwhile
        self._superseded: dict[str, int] = {}
        self._starting = False
        self._ready: deque[StoredJob | None] = deque()  # due rows for the firers; None: stop
        self._idle: deque[asyncio.Future[None]] = deque()  # firers waiting for work
        self._firers: list[asyncio.Task[None]] = []
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._committer: _GroupCommitter | None = None
        self._inserts: Batcher[tuple[StoredJob, bool], bool | Exception] = Batcher(
            self._store.insert_each
        )
        self._started_us = 0

    @property
    def handlers(self) -> HandlerRegistry:
        return self._handlers

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._starting or self._loop_task is not None:
            return
        self._starting = True
        try:
            await self._start()
        finally:
            self._starting = False

    async def _start(self) -> None:
        await self._store.open()
        self._started_us = self._clock.now_micros()
        self._committer = _GroupCommitter(self._store, self._settled)
        self._window = DueWindow(self._window.capacity)
        self._ready.clear()
        self._idle.clear()
        self._firers = [
            asyncio.create_task(self._fire(), name=f"duetime-jobs-firer-{i}")
            for i in range(self._max_concurrency)
        ]
        await self._refill()
        self._loop_task = asyncio.create_task(self._run(), name="duetime-jobs-loop")

    async def stop(self) -> None:
        if self._loop_task is None:
            return
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        self._loop_task = None
        # the firers finish the triggers already due, then stop
        self._ready.extend([None] * len(self._firers))
        self._wake_firers(len(self._firers))
        await asyncio.gather(*self._firers, return_exceptions=True)
        self._firers = []
        if self._committer is not None:
            await self._committer.close()
        await self._inserts.close()
        await self._store.close()

    @property
    def ready(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    # -- jobs ------------------------------------------------------------------------------
    async def schedule(self, job: Job, *, overwrite: bool = False) -> JobState:
        row = new_row(job, self._clock.now_micros(), current())
        # concurrent calls share one transaction (one commit, one fsync on SQLite)
        stored = await self._inserts.submit((row, overwrite))
        if isinstance(stored, Exception):
            raise stored
        if not stored:
            raise JobExistsError(job.name)
        self._supersede([job.name])
        self._note(job.name, row)
        return row.state()

    async def schedule_many(self, jobs: Sequence[Job], *, overwrite: bool = False) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError("a batch names the same job more than once")
        now_us = self._clock.now_micros()
        trace_context = current()
        rows = [new_row(job, now_us, trace_context) for job in jobs]
        await self._store.insert(rows, overwrite=overwrite)
        self._supersede(names)
        for row in rows:
            self._note(row.job.name, row)

    # -- jobs a caller writes in its own transaction --------------------------------------
    def rows_for(
        self, jobs: Sequence[Job], trace_contexts: Sequence[str | None] | None = None
    ) -> list[StoredJob]:
        """Validate `jobs` (raises `ScheduleError`) into rows that a caller stores itself, in
        its own transaction on this engine's database (`SqlJobStore.write_in`), overwriting;
        it then reports the commit with `committed`. `trace_contexts`: the trace context of
        each job (default: the current one)."""
        now_us = self._clock.now_micros()
        if trace_contexts is None:
            trace_contexts = [current()] * len(jobs)
        return [
            new_row(job, now_us, context) for job, context in zip(jobs, trace_contexts, strict=True)
        ]

    def committed(self, rows: Sequence[StoredJob], deleted: Sequence[str]) -> None:
        """A caller committed `rows` (overwriting) and deleted the jobs `deleted`. Call it in
        commit order, before the transaction's connection is released."""
        self._supersede([*(r.job.name for r in rows), *deleted])
        for row in rows:
            self._note(row.job.name, row)
        for name in deleted:
            self._note(name, None)

    async def reload(self, names: Sequence[str]) -> None:
        """Hold the jobs `names` as stored now: after a caller's commit whose outcome is not
        known. Retried until the database answers."""
        delay = 0.1
        while True:
            try:
                found = {name: await self._store.get(name) for name in names}
                break
            except Exception:
                log.exception("could not re-read %d jobs; retrying", len(names))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._supersede(list(names))
        for name, row in found.items():
            self._note(name, row)

    async def get(self, name: str) -> JobState | None:
        row = await self._store.get(name)
        return None if row is None else row.state()

    async def delete(self, name: str) -> bool:
        existed = await self._store.delete(name)
        self._supersede([name])
        self._note(name, None)
        return existed

    async def delete_prefix(self, prefix: str) -> int:
        count = await self._store.delete_prefix(prefix)
        self._supersede([n for n in self._inflight if n.startswith(prefix)])
        self._window.forget_prefix(prefix)
        return count

    async def list_jobs(
        self, prefix: str = "", *, limit: int = 100, after: str = ""
    ) -> list[JobState]:
        return [r.state() for r in await self._store.list_jobs(prefix, limit=limit, after=after)]

    # -- dead letters ----------------------------------------------------------------------
    async def dead_letters(
        self, prefix: str = "", *, limit: int = 100, after: str = ""
    ) -> list[DeadLetter]:
        return await self._store.dead_letters(prefix, limit=limit, after=after)

    async def dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        return await self._store.get_dead_letter(dead_letter_id)

    async def replay(self, dead_letter_id: str) -> None:
        await replay_dead_letter(self._store, self._handlers, dead_letter_id, self._clock.now())

    async def discard(self, dead_letter_id: str) -> bool:
        return await self._store.delete_dead_letter(dead_letter_id)

    # -- handlers --------------------------------------------------------------------------
    def add_handler(self, prefix: str, handler: TriggerHandler) -> None:
        self._handlers.add(prefix, handler)

    # -- the window and the loop ----------------------------------------------------------
    def _note(self, name: str, row: StoredJob | None) -> None:
        if self._window.note(name, row):
            self._wakeup.set()

    async def _refill(self) -> None:
        """Top the window up from the database; retried until it succeeds."""
        while True:
            after, limit = self._window.begin_load()
            try:
                rows = await self._store.earliest(limit, after=after)
            except Exception:
                self._window.abort_load()
                log.exception("could not load due jobs; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            self._window.finish_load(rows, limit, self._inflight)
            self._wakeup.set()
            return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        refill: asyncio.Task[None] | None = None
        try:
            while True:
                self._wakeup.clear()
                due = self._window.pop_due(self._clock.now_micros())
                if due:
                    for row in due:
                        self._inflight[row.job.name] = row.generation
                    self._ready.extend(due)
                    self._wake_firers(len(due))
                if self._window.wants_more and (refill is None or refill.done()):
                    refill = asyncio.create_task(self._refill())
                due_us = self._window.next_due_us()
                if due_us is None:
                    await self._wakeup.wait()
                    continue
                delay = (due_us - self._clock.now_micros()) / 1e6
                timer = loop.call_later(max(delay, 0), self._wakeup.set)
                try:
                    await self._wakeup.wait()
                finally:
                    timer.cancel()
        finally:
            if refill is not None:
                refill.cancel()

    async def _fire(self) -> None:
        """One of `max_concurrency` firers: runs the due triggers one after the other. Every
        `_YIELD_EVERY` triggers it lets the event loop run, in case the handlers never wait."""
        ready, idle = self._ready, self._idle
        loop = asyncio.get_running_loop()
        fired = 0
        while True:
            if not ready:
                woken = loop.create_future()
                idle.append(woken)
                await woken
                continue
            row = ready.popleft()
            if row is None:
                return
            try:
                await self._attempt(row)
            except Exception:  # a bug, not a handler's failure: keep this firer going
                log.exception("trigger of job %r could not be settled", row.job.name)
                if self._inflight.get(row.job.name) == row.generation:
                    del self._inflight[row.job.name]
            fired += 1
            if fired % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    def _wake_firers(self, count: int) -> None:
        """Wake up to `count` idle firers (one per due trigger, not all of them)."""
        idle = self._idle
        while count > 0 and idle:
            woken = idle.popleft()
            if not woken.done():
                woken.set_result(None)
                count -= 1

    async def _attempt(self, row: StoredJob) -> None:
        assert self._committer is not None
        name = row.job.name
        with logs.bind(job=name):
            fired_us = self._clock.now_micros()
            trigger = Trigger(
                name=name,
                data=row.job.data,
                scheduled_at=from_micros(row.tick_us),
                fired_at=from_micros(fired_us),
                attempt=row.attempt + 1,
                late=row.tick_us < self._started_us and row.created_us < self._started_us,
            )
            if row.attempt == 0:  # a retry's wait is the failure policy's, not lateness
                metrics.first_attempt_started("embedded", fired_us - row.tick_us)
            if self._tracing is None:
                answer, error = await self._deliver(trigger)
            else:
                with trigger_span(self._tracing, trigger, row.trace_context, "embedded") as span:
                    answer, error = await self._deliver(trigger)
                    trigger_ended(span, answer, error)
            outcome = settle(
                row,
                error=error,
                now_us=self._clock.now_micros(),
                app_not_found=answer is Answer.APP_NOT_FOUND,
            )
            metrics.trigger_settled("embedded", outcome, answer, error)
            if outcome.dead_letter is not None:
                log.error("job %r gave up after %d attempts", name, outcome.dead_letter.attempts)
        # the firer goes on to the next trigger while the outcome waits for its group commit
        self._committer.submit(row, outcome)

    def _settled(self, batch: list[tuple[StoredJob, Outcome]], applied: list[bool]) -> None:
        inflight, superseded = self._inflight, self._superseded
        for (row, outcome), ok in zip(batch, applied, strict=True):
            name = row.job.name
            # A schedule or delete of this name that finished while the outcome was being
            # written is newer than the outcome: it has updated the window itself.
            if ok and superseded.get(name) != row.generation:
                self._note(name, outcome.update)
            if inflight.get(name) == row.generation:
                del inflight[name]
            if superseded.get(name) == row.generation:
                del superseded[name]

    async def _deliver(self, trigger: Trigger) -> tuple[Answer | None, str | None]:
        """Run the handler: its answer, or the failure's description."""
        try:
            answer = await self._handlers.deliver(trigger)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the engine is stopping
            error: str | None = "CancelledError: the handler was cancelled"
        except Exception as exc:
            error = describe_error(exc)
        else:
            return answer, None
        log.warning("job %r attempt %d failed: %s", trigger.name, trigger.attempt, error)
        return None, error

    def _supersede(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self._inflight:
                self._superseded[name] = self._inflight[name]


class _GroupCommitter:
    """Writes attempt outcomes in batches: one transaction for all that are waiting (at most
    `max_batch`), then calls `applied(batch, flags)` with whether each outcome was applied.
    A write that fails is retried until it succeeds, so no outcome is lost while the
    database is briefly away (the engine stalls instead). One callback per batch, not a
    future per outcome: ≈ 5 µs less per trigger."""

    def __init__(
        self,
        store: JobStore,
        applied: Callable[[list[tuple[StoredJob, Outcome]], list[bool]], None],
        *,
        max_batch: int = 1000,
    ) -> None:
        self._store = store
        self._applied = applied
        self._max_batch = max_batch
        self._pending: deque[tuple[StoredJob, Outcome]] = deque()
        self._task: asyncio.Task[None] | None = None

    def submit(self, row: StoredJob, outcome: Outcome) -> None:
        self._pending.append((row, outcome))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="duetime-jobs-outcomes")

    async def close(self) -> None:
        """Wait until every outcome submitted is committed."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        pending = self._pending
        await asyncio.sleep(0)  # let the outcomes settled together join this batch
        while pending:
            batch = [pending.popleft() for _ in range(min(len(pending), self._max_batch))]
            flags = await self._write([outcome for _, outcome in batch])
            self._applied(batch, flags)

    async def _write(self, outcomes: list[Outcome]) -> list[bool]:
        delay = 0.05
        while True:
            try:
                return await self._store.apply(outcomes)
            except Exception:
                log.exception("could not record %d job outcomes; retrying", len(outcomes))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
