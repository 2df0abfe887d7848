"""`JobStore` on SQLAlchemy 2 async: SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, true, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from duetime.db.engine import create_engine, migrate
from duetime.db.helpers import chunks, upsert_insert
from duetime.db.tables import dead_letters as dl_table
from duetime.db.tables import jobs as jobs_table
from duetime.jobs.model import DeadLetter, FailurePolicy, Job, JobExistsError
from duetime.jobs.store import JobStore, Outcome, StoredJob
from duetime.timefmt import from_micros, to_micros

_JOBS_REVISION = "jobs@head"
"""The migrations of the jobs tables (`jobs`, `job_dead_letters`): 0001 and the `jobs`
branch that grows from it. A store on its own URL stops there, so a jobs-only database
holds only them; duetime's other migrations bring it to the full schema if the app opens it
one day."""

# what an attempt's outcome changes, in the one UPDATE per batch of outcomes
_PROGRESS = ("next_fire_us", "tick_us", "attempt", "fired", "app_not_found", "app_not_found_us")
_ADVANCE = (
    update(jobs_table)
    .where(jobs_table.c.name == bindparam("b_name"))
    .values({column: bindparam(f"b_{column}") for column in _PROGRESS})
)


class SqlJobStore(JobStore):
    """Jobs in a SQL database. Given a `url`, the store owns its engine and `open` creates
    only the jobs tables; given an `engine` (the app's), `open` migrates duetime's whole
    schema, as the app shares that engine with its other stores."""

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None) -> None:
        self._owns_engine = engine is None  # an engine given is its owner's to dispose
        if engine is None:
            if url is None:
                raise ValueError("SqlJobStore needs a URL or an engine")
            engine = create_engine(url)
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def open(self) -> None:
        await migrate(self._engine, _JOBS_REVISION if self._owns_engine else "heads")

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    async def insert(self, rows: Sequence[StoredJob], *, overwrite: bool) -> None:
        try:
            async with self._engine.begin() as conn:
                if overwrite:
                    await self.write_in(conn, rows, ())
                else:
                    for chunk in chunks([_to_values(r) for r in rows]):
                        await conn.execute(insert(jobs_table), chunk)
        except IntegrityError:
            if overwrite:
                raise
            raise JobExistsError(await self._first_existing([r.job.name for r in rows])) from None

    async def insert_each(self, items: Sequence[tuple[StoredJob, bool]]) -> list[bool | Exception]:
        names = [row.job.name for row, _ in items]
        if len(items) == 1 or len(set(names)) < len(names):
            # alone (a plain INSERT is the fastest), or one name twice: row after row
            return await super().insert_each(items)
        fresh = [_to_values(row) for row, overwrite in items if not overwrite]
        replacing = [_to_values(row) for row, overwrite in items if overwrite]
        inserted: set[str] = set()
        async with self._engine.begin() as conn:
            if fresh:
                stmt = upsert_insert(conn, jobs_table).on_conflict_do_nothing(
                    index_elements=["name"]
                )
                result = await conn.execute(stmt.returning(jobs_table.c.name), fresh)
                inserted.update(result.scalars())
            for chunk in chunks(replacing):
                await conn.execute(self._upsert(conn), chunk)
        return [overwrite or row.job.name in inserted for row, overwrite in items]

    async def write_in(
        self, conn: AsyncConnection, rows: Sequence[StoredJob], deleted: Sequence[str]
    ) -> None:
        """Upsert `rows` and delete the jobs named `deleted` in the caller's transaction on
        this store's database (a job's name appears at most once)."""
        for chunk in chunks([_to_values(r) for r in rows]):
            await conn.execute(self._upsert(conn), chunk)
        for names in chunks(list(deleted)):
            await conn.execute(delete(jobs_table).where(jobs_table.c.name.in_(names)))

    async def _first_existing(self, names: list[str]) -> str:
        async with self._engine.connect() as conn:
            for chunk in chunks(names):
                query = select(jobs_table.c.name).where(jobs_table.c.name.in_(chunk)).limit(1)
                found = await conn.scalar(query)
                if found is not None:
                    return str(found)
        return names[0]  # taken a moment ago and deleted since: still a conflict

    def _upsert(self, conn: AsyncConnection) -> Any:
        stmt = upsert_insert(conn, jobs_table)
        columns = {c.name: stmt.excluded[c.name] for c in jobs_table.columns if c.name != "name"}
        return stmt.on_conflict_do_update(index_elements=["name"], set_=columns)

    async def get(self, name: str) -> StoredJob | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(jobs_table).where(jobs_table.c.name == name))).first()
        return None if row is None else _from_row(row)

    async def delete(self, name: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(jobs_table).where(jobs_table.c.name == name))
        return bool(result.rowcount)

    async def delete_prefix(self, prefix: str) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(jobs_table).where(_starts(jobs_table.c.name, prefix))
            )
        return int(result.rowcount)

    async def list_jobs(self, prefix: str, *, limit: int, after: str) -> list[StoredJob]:
        query = (
            select(jobs_table)
            .where(_starts(jobs_table.c.name, prefix), jobs_table.c.name > after)
            .order_by(jobs_table.c.name)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_from_row(r) for r in (await conn.execute(query)).all()]

    async def earliest(
        self, limit: int, *, after: tuple[int, str] | None = None
    ) -> list[StoredJob]:
        c = jobs_table.c
        query = select(jobs_table).order_by(c.next_fire_us, c.name).limit(limit)
        if after is not None:
            fire_us, name = after
            query = query.where(
                or_(c.next_fire_us > fire_us, and_(c.next_fire_us == fire_us, c.name > name))
            )
        async with self._engine.connect() as conn:
            return [_from_row(r) for r in (await conn.execute(query)).all()]

    async def apply(self, outcomes: Sequence[Outcome]) -> list[bool]:
        c = jobs_table.c
        async with self._engine.begin() as conn:
            dead = [_dead_values(o.dead_letter) for o in outcomes if o.dead_letter is not None]
            if dead:  # a retried write may find its dead letters stored already
                await conn.execute(upsert_insert(conn, dl_table).on_conflict_do_nothing(), dead)
            current: dict[str, int] = {}
            for chunk in chunks([o.name for o in outcomes]):
                query = select(c.name, c.generation).where(c.name.in_(chunk))
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()
                current.update({r.name: r.generation for r in await conn.execute(query)})
            applied = [current.get(o.name) == o.generation for o in outcomes]
            done = [o.name for o, ok in zip(outcomes, applied, strict=True) if ok and not o.update]
            for chunk in chunks(done):
                await conn.execute(delete(jobs_table).where(c.name.in_(chunk)))
            moved = [
                _progress(o.update)
                for o, ok in zip(outcomes, applied, strict=True)
                if ok and o.update is not None
            ]
            if moved:
                await conn.execute(_ADVANCE, moved)
        return applied

    async def dead_letters(self, prefix: str, *, limit: int, after: str) -> list[DeadLetter]:
        query = (
            select(dl_table)
            .where(_starts(dl_table.c.name, prefix), dl_table.c.id > after)
            .order_by(dl_table.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_dead_from_row(r) for r in await conn.execute(query)]

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(dl_table).where(dl_table.c.id == dead_letter_id))
            ).first()
        return None if row is None else _dead_from_row(row)

    async def put_dead_letter(self, dead_letter: DeadLetter) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(dl_table).where(dl_table.c.id == dead_letter.id))
            await conn.execute(insert(dl_table), [_dead_values(dead_letter)])

    async def delete_dead_letter(self, dead_letter_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(dl_table).where(dl_table.c.id == dead_letter_id))
        return bool(result.rowcount)


def _starts(column: Any, prefix: str) -> Any:
    return column.startswith(prefix, autoescape=True) if prefix else true()


_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""`json.dumps(value, separators=(",", ":"))` without building an encoder per call."""


def _dump(value: Any) -> str | None:
    return None if value is None else _COMPACT.encode(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _policy_to_json(policy: FailurePolicy | None) -> str | None:
    if policy is None:
        return None
    return _dump(
        {
            "kind": policy.kind,
            "interval_us": policy.interval // timedelta(microseconds=1),
            "max_retries": policy.max_retries,
        }
    )


def _policy_from_json(text: str | None) -> FailurePolicy | None:
    raw = _load(text)
    if raw is None:
        return None
    return FailurePolicy(
        raw["kind"], timedelta(microseconds=raw["interval_us"]), raw["max_retries"]
    )


def _to_values(row: StoredJob) -> dict[str, Any]:
    job = row.job
    return {
        "name": job.name,
        "schedule": job.schedule,
        "due_time": job.due_time,
        "repeats": job.repeats,
        "ttl": job.ttl,
        "data": _dump(job.data),
        "failure_policy": _policy_to_json(job.failure_policy),
        "created_us": row.created_us,
        "anchor_us": row.anchor_us,
        "next_fire_us": row.next_fire_us,
        "tick_us": row.tick_us,
        "attempt": row.attempt,
        "fired": row.fired,
        "expires_us": row.expires_us,
        "generation": row.generation,
        "app_not_found": row.app_not_found,
        "app_not_found_us": row.app_not_found_us,
        "trace_context": row.trace_context,
    }


_COLUMNS = (
    "name", "schedule", "due_time", "repeats", "ttl", "data", "failure_policy", "created_us",
    "anchor_us", "next_fire_us", "tick_us", "attempt", "fired", "expires_us", "generation",
    "app_not_found", "app_not_found_us", "trace_context",
)  # fmt: skip
if tuple(jobs_table.columns.keys()) != _COLUMNS:  # _from_row reads rows by position
    raise RuntimeError(f"jobs table columns changed: {jobs_table.columns.keys()}")


def _from_row(r: Sequence[Any]) -> StoredJob:
    """A row of `select(jobs_table)`, by position (in `_COLUMNS` order): a Row's attribute
    access costs ≈ 1 µs a column here, and a window refill reads thousands of rows (a
    1,000-row refill: 37 → 18 ms)."""
    (
        name, schedule, due_time, repeats, ttl, data, policy, created_us, anchor_us,
        next_fire_us, tick_us, attempt, fired, expires_us, generation, app_not_found,
        app_not_found_us, trace_context,
    ) = r  # fmt: skip
    return StoredJob(
        Job(
            name,
            schedule,
            due_time,
            repeats,
            ttl,
            None if data is None else json.loads(data),
            None if policy is None else _policy_from_json(policy),
        ),
        created_us,
        anchor_us,
        next_fire_us,
        tick_us,
        attempt,
        fired,
        expires_us,
        generation,
        app_not_found,
        app_not_found_us,
        trace_context,
    )


def _progress(row: StoredJob) -> dict[str, Any]:
    return {"b_name": row.job.name, **{f"b_{c}": getattr(row, c) for c in _PROGRESS}}


def _dead_values(d: DeadLetter) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "data": _dump(d.data),
        "scheduled_us": to_micros(d.scheduled_at),
        "failed_us": to_micros(d.failed_at),
        "attempts": d.attempts,
        "error": d.error,
    }


def _dead_from_row(r: Row[Any]) -> DeadLetter:
    return DeadLetter(
        id=r.id,
        name=r.name,
        data=_load(r.data),
        scheduled_at=from_micros(r.scheduled_us),
        failed_at=from_micros(r.failed_us),
        attempts=r.attempts,
        error=r.error,
    )
