"""How a task change's reminder jobs reach the scheduler: inside the change's transaction.

Two ways, one contract (`Scheduling.write`): the jobs are committed or queued in the same
transaction as the task change, so a task is never stored without its reminders' jobs.

- `InlineScheduling`: the embedded engine keeps its jobs in the same database, so the job
  rows themselves are written in the task's transaction.
- `duetime.tasks.relay.SchedulingRelay`: a scheduler elsewhere (a Dapr sidecar) gets
  intents through an outbox table, carried over after commit and retried until they take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from duetime.db.helpers import Transaction
from duetime.jobs import Job
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.sql_store import SqlJobStore


@dataclass(frozen=True)
class Intent:
    """Schedule `job` (a JSON-ready dict for `duetime.jobs.Job`, with overwrite) or, when
    `job` is None, delete the job `job_name`. `trace_context`: the trace context the job is
    asked for in (`duetime.tracing.current`), stored with it."""

    job_name: str
    job: dict[str, Any] | None
    trace_context: str | None = None


class Scheduling(Protocol):
    async def write(self, tx: Transaction, intents: Sequence[Intent]) -> None:
        """Make `intents` part of `tx`: once it commits they take effect (at least once),
        in order, the last intent for a job winning; if it rolls back they never do."""


def latest_per_job(intents: Sequence[Intent]) -> list[Intent]:
    latest: dict[str, Intent] = {}
    for intent in intents:
        latest.pop(intent.job_name, None)
        latest[intent.job_name] = intent
    return list(latest.values())


def job_from_intent(name: str, payload: dict[str, Any]) -> Job:
    return Job(
        name=name,
        due_time=payload.get("dueTime"),
        schedule=payload.get("schedule"),
        data=payload.get("data"),
    )


class InlineScheduling:
    """For the embedded engine on the task store's own database: job rows are upserted and
    deleted in the task change's transaction, and the engine learns of them after commit."""

    def __init__(self, scheduler: EmbeddedJobScheduler, store: SqlJobStore) -> None:
        self._scheduler = scheduler
        self._store = store

    async def write(self, tx: Transaction, intents: Sequence[Intent]) -> None:
        if not intents:
            return
        latest = latest_per_job(intents)
        puts = [i for i in latest if i.job is not None]
        rows = self._scheduler.rows_for(
            [job_from_intent(i.job_name, i.job) for i in puts if i.job is not None],
            [i.trace_context for i in puts],
        )
        deleted = [i.job_name for i in latest if i.job is None]
        await self._store.write_in(tx.conn, rows, deleted)
        names = [*(r.job.name for r in rows), *deleted]
        tx.after_commit(
            lambda: self._scheduler.committed(rows, deleted),
            if_unsure=lambda: self._scheduler.reload(names),
        )
