"""The Dapr backend: jobs live in the Dapr Scheduler, reached through a `daprd` sidecar.

Wire: daprd's HTTP Jobs API under `/v1.0-alpha1/jobs/{name}`, the one path served by 1.16
through 1.18 (1.16 has no `/v1.0/jobs`), with httpx, which duetime already uses; gRPC would
add grpcio and the SDK's stubs for nothing the backend needs, since listing is served from
duetime's own database (1.16 has no HTTP list). Triggers come back as `POST /job/{name}`
on duetime's HTTP port (`duetime.api.triggers`) and reach `DaprJobScheduler.receive`.

duetime keeps a **mirror** of each job in its own database (the embedded engine's `jobs`
table, `JobStore`): written before the job is sent to daprd, advanced by each trigger. It
gives what Dapr does not:
- `get`/`list_jobs` with the next fire time, on every Dapr version;
- each trigger's `scheduled_at` and `late` (compared with the tick duetime stored);
- coalescing: Dapr fires a recurring job's missed ticks back to back after downtime; the
  first moves the mirror past now, the rest find the mirror's tick in the future and are
  acknowledged without reaching a handler;
- dead letters: the attempt that exhausts the job's policy is kept as a dead letter and
  acknowledged. daprd is sent one retry more than the policy, so one attempt that never
  reached duetime (a connection error) does not cost the dead letter;
- cancellation that holds: a trigger of a job the mirror no longer has (deleted, or a
  one-shot that already succeeded) is acknowledged without delivery;
- no job lost while duetime is down: the Scheduler drops a one-shot job whose triggers
  could not reach duetime; the mirror still has it, and a sweep sends it again.

Delivery stays at least once: a crash after a handler returns and before the mirror moves
delivers that tick again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

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
from duetime.jobs.model import (
    JSON,
    Answer,
    DeadLetter,
    FailurePolicy,
    Job,
    JobExistsError,
    JobState,
    Trigger,
)
from duetime.jobs.names import check_job_name
from duetime.jobs.port import JobScheduler, TriggerHandler
from duetime.jobs.schedule import ScheduleError
from duetime.jobs.scope import from_dapr_name, to_dapr_name
from duetime.jobs.store import JobStore, Outcome, StoredJob
from duetime.timefmt import format_rfc3339, from_micros
from duetime.tracing import Tracing, current

log = logging.getLogger(__name__)


class SidecarUnavailable(RuntimeError):
    """daprd did not answer, or answered with an error that is not about the job."""


class TriggerFailed(RuntimeError):
    """A trigger's handler failed and the job's policy allows another attempt."""


def _policy_for_dapr(policy: FailurePolicy | None) -> dict[str, Any]:
    """The policy daprd applies: duetime's, with one retry more (see the module docstring)."""
    policy = policy or FailurePolicy.default()
    if policy.kind == "drop":
        return {"constant": {"interval": "1s", "maxRetries": 1}}
    constant: dict[str, Any] = {"interval": f"{policy.interval.total_seconds():g}s"}
    if policy.max_retries is not None:
        constant["maxRetries"] = policy.max_retries + 1
    return {"constant": constant}


def dapr_body(job: Job) -> dict[str, Any]:
    """The POST body for daprd. `data` is always sent: daprd 1.16.5 accepts a job without
    data and never delivers it."""
    body: dict[str, Any] = {"data": job.data, "failurePolicy": _policy_for_dapr(job.failure_policy)}
    if job.schedule is not None:
        body["schedule"] = job.schedule
    if job.due_time is not None:
        body["dueTime"] = job.due_time
    if job.repeats is not None:
        body["repeats"] = job.repeats
    if job.ttl is not None:
        body["ttl"] = job.ttl
    return body


class DaprSidecar:
    """daprd's Jobs API over HTTP. `token` is sent as `dapr-api-token` on every call."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"dapr-api-token": token} if token else {}
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, name: str, body: Any = None) -> httpx.Response:
        try:
            return await self._client.request(
                method, f"/v1.0-alpha1/jobs/{quote(to_dapr_name(name), safe='')}", json=body
            )
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(f"daprd unreachable: {exc!r}") from exc

    async def schedule(self, job: Job) -> None:
        """Create or replace `job` (duetime's mirror decides whether the name is free)."""
        answer = await self._call("POST", job.name, {**dapr_body(job), "overwrite": True})
        if answer.status_code == 204:
            return
        code, message = _error(answer)
        if answer.status_code == 409:
            raise JobExistsError(job.name)
        if answer.status_code in (400, 500) and code.startswith("DAPR_SCHEDULER_SCHEDULE"):
            if "connect" in message or "Unavailable" in message:
                raise SidecarUnavailable(f"daprd: {message}")
            raise ScheduleError(message)
        raise SidecarUnavailable(f"daprd answered {answer.status_code} {code}: {message}")

    async def get(self, name: str) -> dict[str, Any] | None:
        """The job as daprd shows it, or None. daprd answers a missing job with 500
        `DAPR_SCHEDULER_GET_JOB`, not 404."""
        answer = await self._call("GET", name)
        if answer.status_code == 200:
            found: dict[str, Any] = answer.json()
            return found
        code, message = _error(answer)
        if code == "DAPR_SCHEDULER_GET_JOB" and "not found" in message.lower():
            return None
        raise SidecarUnavailable(f"daprd answered {answer.status_code} {code}: {message}")

    async def delete(self, name: str) -> None:
        """Delete; daprd answers 204 whether or not the job existed."""
        answer = await self._call("DELETE", name)
        if answer.status_code != 204:
            code, message = _error(answer)
            raise SidecarUnavailable(f"daprd answered {answer.status_code} {code}: {message}")

    async def healthy(self) -> bool:
        try:
            answer = await self._client.get("/v1.0/healthz/outbound")
        except httpx.HTTPError:
            return False
        return answer.status_code == 204


def _error(answer: httpx.Response) -> tuple[str, str]:
    try:
        body = answer.json()
        return str(body.get("errorCode", "")), str(body.get("message", ""))
    except ValueError:
        return "", answer.text[:200]


class DaprJobScheduler(JobScheduler):
    """The jobs port on a Dapr sidecar, with a mirror of each job in `store`.

    Differences from the embedded engine that remain: two replicas can run ticks of one
    job at once when a handler outlasts the interval (within one process a tick that
    arrives while the previous one runs is coalesced into it), and delivery needs duetime's
    HTTP port reachable by daprd. `late` marks a trigger that
    reached duetime more than `late_after` past its tick.
    """

    def __init__(
        self,
        store: JobStore,
        sidecar: DaprSidecar,
        *,
        clock: Clock | None = None,
        late_after: timedelta = timedelta(seconds=1),
        concurrency: int = 32,
        namespace: str = "default",
        tracing: Tracing | None = None,
    ) -> None:
        """`tracing`: a span per trigger attempt (None: tracing is off)."""
        self._namespace = namespace
        self._tracing = tracing
        self._store = store
        self._sidecar = sidecar
        self._clock = clock or SystemClock()
        self._handlers = HandlerRegistry()
        self._late_after_us = late_after // timedelta(microseconds=1)
        self._concurrency = concurrency
        self._open = False
        self._running: set[str] = set()  # jobs whose trigger runs in this process now
        self._sending: dict[str, asyncio.Event] = {}  # schedule calls not settled yet
        self._reconciler: asyncio.Task[None] | None = None
        # triggers' outcomes, group-committed: one transaction for all that wait together
        self._outcomes: Batcher[Outcome, bool] = Batcher(self._store.apply)

    @property
    def sidecar(self) -> DaprSidecar:
        return self._sidecar

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the mirror. The sidecar need not be up: writes that need it fail until it
        is, and daprd delivers triggers once it connects."""
        if not self._open:
            await self._store.open()
            self._open = True
        if self._reconciler is None:
            self._reconciler = asyncio.create_task(self._reconcile(), name="duetime-dapr-resend")

    async def stop(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        if self._open:
            self._open = False
            await self._outcomes.close()
            await self._store.close()
        await self._sidecar.aclose()

    @property
    def ready(self) -> bool:
        return self._open

    async def _reconcile(self, every: float = 5.0, stale: float = 20.0) -> None:
        """Send again the jobs Dapr lost. The Scheduler drops a one-shot job whose triggers
        could not reach duetime (its retries used up while duetime was down, and daprd 1.16.5
        also stops retrying some of them early); the mirror keeps every job until a trigger
        of it is settled. A job the mirror holds that is overdue by `stale` seconds and that
        daprd no longer has is scheduled again; it fires at once, and a duplicate is
        acknowledged by the mirror. daprd also stops showing a job whose trigger is queued
        for delivery, so under a backlog longer than `stale` a job can be sent twice; the
        mirror absorbs that too. Overdue jobs are read in fire-time order, so the sweep
        costs nothing while nothing is overdue."""
        stale_us = int(stale * 1e6)
        while True:
            await asyncio.sleep(every)
            try:
                await self._resend_lost(self._clock.now_micros() - stale_us)
            except Exception as exc:  # the sidecar or the database is away: next round
                log.info("looking for jobs Dapr lost failed: %s", exc)

    async def _resend_lost(self, overdue_us: int) -> None:
        after: tuple[int, str] | None = None
        while batch := await self._store.earliest(200, after=after):
            for row in batch:
                if row.next_fire_us >= overdue_us:
                    return
                if await self._sidecar.get(row.job.name) is None:
                    log.warning(
                        "job %r is overdue and not on daprd; sending it again", row.job.name
                    )
                    await self._sidecar.schedule(row.job)
            after = batch[-1].key

    # -- jobs ------------------------------------------------------------------------------
    def _row(self, job: Job, now_us: int, trace_context: str | None) -> StoredJob:
        check_job_name(to_dapr_name(job.name))  # daprd's rule, answered before daprd is asked
        return new_row(job, now_us, trace_context)

    async def schedule(self, job: Job, *, overwrite: bool = False) -> JobState:
        row = self._row(job, self._clock.now_micros(), current())
        old = await self._store.get(job.name) if overwrite else None
        await self._store.insert([row], overwrite=overwrite)
        settled = self._sending[job.name] = asyncio.Event()
        try:
            await self._sidecar.schedule(job)
        except BaseException:
            await self._restore([row], {job.name: old})
            raise
        finally:
            self._sending.pop(job.name, None)
            settled.set()
        return row.state()

    async def schedule_many(self, jobs: Sequence[Job], *, overwrite: bool = False) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError("a batch names the same job more than once")
        now_us = self._clock.now_micros()
        trace_context = current()
        rows = [self._row(job, now_us, trace_context) for job in jobs]
        old: dict[str, StoredJob | None] = {}
        if overwrite:
            for name in names:
                old[name] = await self._store.get(name)
        if not await self._sidecar.healthy():  # fail before writing anything
            raise SidecarUnavailable("daprd is not serving")
        await self._store.insert(rows, overwrite=overwrite)
        slots = asyncio.Semaphore(self._concurrency)

        async def send(job: Job) -> None:
            async with slots:
                await self._sidecar.schedule(job)

        settled = asyncio.Event()
        self._sending.update(dict.fromkeys(names, settled))
        try:
            results = await asyncio.gather(*(send(j) for j in jobs), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                await self._restore(rows, old)
                raise failures[0]
        finally:
            for name in names:
                self._sending.pop(name, None)
            settled.set()

    async def _restore(self, rows: Sequence[StoredJob], old: dict[str, StoredJob | None]) -> None:
        """Undo a failed schedule: the mirror goes back to what it held (best effort on
        daprd, whose copy a trigger checks against the mirror anyway)."""
        for row in rows:
            previous = old.get(row.job.name)
            if previous is None:
                await self._store.delete(row.job.name)
                try:
                    await self._sidecar.delete(row.job.name)
                except SidecarUnavailable:
                    pass
            else:
                await self._store.insert([previous], overwrite=True)
                # daprd may already hold the replacement: put the previous job back there,
                # due at the mirror's next fire, or it would never fire again
                pinned = format_rfc3339(from_micros(previous.next_fire_us))
                try:
                    await self._sidecar.schedule(replace(previous.job, due_time=pinned))
                except (SidecarUnavailable, ScheduleError) as exc:
                    log.warning("could not restore job %r on daprd: %s", row.job.name, exc)

    async def get(self, name: str) -> JobState | None:
        row = await self._store.get(name)
        return None if row is None else row.state()

    async def delete(self, name: str) -> bool:
        existed = await self._store.delete(name)
        await self._sidecar.delete(name)
        return existed

    async def delete_prefix(self, prefix: str) -> int:
        count = 0
        while batch := await self._store.list_jobs(prefix, limit=500, after=""):
            for row in batch:
                count += await self.delete(row.job.name)
        return count

    async def list_jobs(
        self, prefix: str = "", *, limit: int = 100, after: str = ""
    ) -> list[JobState]:
        return [r.state() for r in await self._store.list_jobs(prefix, limit=limit, after=after)]

    # -- triggers from daprd ---------------------------------------------------------------
    async def receive(self, name: str, data: JSON) -> bool:
        """One trigger from daprd (`POST /job/{name}`). Returns True when it is settled
        (delivered, dead-lettered, or not due to any handler), False when no handler owns
        the name; raises `TriggerFailed` when daprd should retry."""
        name = await self._key_of(name)
        if name in self._running:
            # Dapr sends the next tick while a slow handler still runs: coalesce it into the
            # running one, as the embedded engine does (one replica; replicas can overlap).
            log.info("trigger of job %r while its previous trigger runs; acknowledged", name)
            return True
        self._running.add(name)
        try:
            return await self._settle(name, data)
        finally:
            self._running.discard(name)

    async def _key_of(self, dapr_name: str) -> str:
        """The engine key of a job named `dapr_name` on daprd (`scope.to_dapr_name`
        reversed). A key outside any scope (used directly on the port) has its own name."""
        key = from_dapr_name(dapr_name, self._namespace)
        if key != dapr_name and key not in self._sending and await self._store.get(key) is None:
            if await self._store.get(dapr_name) is not None:
                return dapr_name
        return key

    async def _settle(self, name: str, data: JSON) -> bool:
        logs.note(job=name)  # this request's task
        while (settled := self._sending.get(name)) is not None:
            # daprd can fire before it answers the schedule call, and a failed batch is
            # undone: wait for the call to settle, then read the mirror
            await settled.wait()
        now_us = self._clock.now_micros()
        row = await self._store.get(name)
        if row is None:
            log.info("trigger of job %r that duetime no longer has; acknowledged", name)
            return True
        if row.tick_us > now_us:
            log.info("trigger of job %r for a tick already handled; acknowledged", name)
            return True
        trigger = Trigger(
            name=name,
            data=data,
            scheduled_at=from_micros(row.tick_us),
            fired_at=from_micros(now_us),
            attempt=row.attempt + 1,
            late=now_us - row.tick_us > self._late_after_us,
        )
        metrics.trigger_started("dapr", trigger)
        if self._tracing is None:
            answer, error = await self._deliver(trigger)
        else:
            with trigger_span(self._tracing, trigger, row.trace_context, "dapr") as span:
                answer, error = await self._deliver(trigger)
                trigger_ended(span, answer, error)
        outcome = settle(
            row,
            error=error,
            now_us=self._clock.now_micros(),
            app_not_found=answer is Answer.APP_NOT_FOUND,
        )
        metrics.trigger_settled("dapr", outcome, answer, error)
        await self._outcomes.submit(outcome)
        if outcome.dead_letter is not None:
            log.error("job %r gave up after %d attempts", name, outcome.dead_letter.attempts)
        elif error is not None:
            raise TriggerFailed(error)
        return answer is not Answer.NO_HANDLER

    async def _deliver(self, trigger: Trigger) -> tuple[Answer, str | None]:
        """Run the handler: its answer, or the failure's description."""
        try:
            return await self._handlers.deliver(trigger), None
        except Exception as exc:
            error = describe_error(exc)
            log.warning("job %r attempt %d failed: %s", trigger.name, trigger.attempt, error)
            return Answer.DELIVERED, error

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
