"""Pure state transitions of a stored job: creation and the outcome of one attempt."""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from datetime import timedelta

from duetime.jobs.model import DeadLetter, FailurePolicy, Job
from duetime.jobs.schedule import Plan, next_tick, parse_schedule, plan_job
from duetime.jobs.store import Outcome, StoredJob
from duetime.timefmt import from_micros, to_micros


def new_generation() -> int:
    return int.from_bytes(os.urandom(8)) >> 2  # 62 random bits


def new_row(job: Job, now_us: int, trace_context: str | None = None) -> StoredJob:
    """Validate `job` (raises `ScheduleError`) and build its first stored state, scheduled
    in the trace context `trace_context`."""
    plan = plan_job(job, from_micros(now_us))
    first = to_micros(plan.first_fire_at)
    return StoredJob(
        job=job,
        created_us=now_us,
        anchor_us=first,
        next_fire_us=first,
        tick_us=first,
        attempt=0,
        fired=0,
        expires_us=None if plan.expires_at is None else to_micros(plan.expires_at),
        generation=new_generation(),
        trace_context=trace_context,
    )


def dead_letter_id(failed_us: int) -> str:
    """Sortable by failure time, unique."""
    return f"{failed_us:017d}-{secrets.token_hex(4)}"


def settle(
    row: StoredJob, *, error: str | None, now_us: int, app_not_found: bool = False
) -> Outcome:
    """The outcome of one attempt of `row`'s current tick (`error` None means success;
    `app_not_found`, a success the app answered 404, is counted on the job).

    A failure within the policy schedules a retry of the same tick. A success, or a failure
    past the policy (which becomes a dead letter), moves the job to its next tick, skipping
    ticks already past (coalescing), or ends it.
    """
    job = row.job
    dead: DeadLetter | None = None
    if error is not None:
        policy = job.failure_policy or FailurePolicy.default()
        failed = row.attempt + 1
        if policy.retry_allowed(failed):
            retry_at = now_us + _micros(policy.interval)
            return Outcome(
                job.name, row.generation, replace(row, attempt=failed, next_fire_us=retry_at)
            )
        dead = DeadLetter(
            id=dead_letter_id(now_us),
            name=job.name,
            data=job.data,
            scheduled_at=from_micros(row.tick_us),
            failed_at=from_micros(now_us),
            attempts=failed,
            error=error,
        )
    fired = row.fired + 1
    if job.schedule is None:
        return Outcome(job.name, row.generation, None, dead)
    plan = Plan(
        first_fire_at=from_micros(row.anchor_us),
        expires_at=None if row.expires_us is None else from_micros(row.expires_us),
        schedule=parse_schedule(job.schedule),
        repeats=job.repeats,
    )
    nxt = next_tick(plan, last_tick=from_micros(row.tick_us), now=from_micros(now_us), fired=fired)
    if nxt is None:
        return Outcome(job.name, row.generation, None, dead)
    nxt_us = to_micros(nxt)
    update = replace(row, next_fire_us=nxt_us, tick_us=nxt_us, attempt=0, fired=fired)
    if app_not_found:
        update = replace(update, app_not_found=row.app_not_found + 1, app_not_found_us=now_us)
    return Outcome(job.name, row.generation, update, dead)


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)
