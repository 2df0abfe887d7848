"""The embedded backend: jobs in the app's database, fired by an in-process loop.

Timing: the loop holds only the `window_size` earliest jobs in memory (a heap keyed by fire
time), sleeps until the earliest, re-checks the wall clock, and fires. Changes made through
this scheduler wake it at once. Nothing polls on a fixed interval: when the window drains,
the next `window_size` jobs are loaded.

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
from collections.abc import Sequence

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
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._committer: _GroupCommitter | None = None
        self._inserts: Batcher[tuple[StoredJob, bool], bool | Exception] = Batcher(
            self._store.insert_each
        )
        self._slots: asyncio.Semaphore | None = None
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
        self._slots = asyncio.Semaphore(self._max_concurrency)
        self._committer = _GroupCommitter(self._store)
        self._window = DueWindow(self._window.capacity)
        await self._refill()
        self._loop_task = asyncio.create_task(self._run(), name="duetime-jobs-loop")

    async def stop(self) -> None:
        if self._loop_task is None:
            return
        self._loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        self._loop_task = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
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
                for row in self._window.pop_due(self._clock.now_micros()):
                    self._inflight[row.job.name] = row.generation
                    task = asyncio.create_task(self._attempt(row))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
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

    async def _attempt(self, row: StoredJob) -> None:
        assert self._slots is not None and self._committer is not None
        name = row.job.name
        logs.note(job=name)
        try:
            async with self._slots:
                fired_us = self._clock.now_micros()
                trigger = Trigger(
                    name=name,
                    data=row.job.data,
                    scheduled_at=from_micros(row.tick_us),
                    fired_at=from_micros(fired_us),
                    attempt=row.attempt + 1,
                    late=row.tick_us < self._started_us and row.created_us < self._started_us,
                )
                metrics.trigger_started("embedded", trigger)
                if self._tracing is None:
                    answer, error = await self._deliver(trigger)
                else:
                    with trigger_span(self._tracing, trigger, row.trace_context, "embedded") as s:
                        answer, error = await self._deliver(trigger)
                        trigger_ended(s, answer, error)
            outcome = settle(
                row,
                error=error,
                now_us=self._clock.now_micros(),
                app_not_found=answer is Answer.APP_NOT_FOUND,
            )
            metrics.trigger_settled("embedded", outcome, answer, error)
            applied = await self._committer.submit(outcome)
            if outcome.dead_letter is not None:
                log.error("job %r gave up after %d attempts", name, outcome.dead_letter.attempts)
            # A schedule or delete of this name that finished while the outcome was being
            # written is newer than the outcome: it has updated the window itself.
            if applied and self._superseded.get(name) != row.generation:
                self._note(name, outcome.update)
        finally:
            if self._inflight.get(name) == row.generation:
                del self._inflight[name]
            if self._superseded.get(name) == row.generation:
                del self._superseded[name]

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
    """Writes attempt outcomes in batches: one transaction for all that are waiting. A write
    that fails is retried until it succeeds, so no outcome is lost while the database is
    briefly away (the engine stalls instead)."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._batcher: Batcher[Outcome, bool] = Batcher(self._write)

    async def submit(self, outcome: Outcome) -> bool:
        return await self._batcher.submit(outcome)

    async def close(self) -> None:
        """Call once every `submit` has returned."""
        await self._batcher.close()

    async def _write(self, outcomes: list[Outcome]) -> list[bool]:
        delay = 0.05
        while True:
            try:
                return await self._store.apply(outcomes)
            except Exception:
                log.exception("could not record %d job outcomes; retrying", len(outcomes))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
