"""Migration 0007 moves jobs written by earlier versions into their scopes, on SQLite and
PostgreSQL: reminder and maintenance jobs into duetime's own scope, the rest (a user job
named `reminder-task-7` too) into the configured app's, with their times and counters
unchanged, so what was pending fires once, to the right handler."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from duetime.db import tables
from duetime.db.engine import create_engine, migrate
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.scope import APP_SCOPES
from duetime.jobs.sql_store import SqlJobStore
from duetime.tasks.model import REMINDER_JOB_PREFIX
from duetime.testing import RecordingHandler

ORPHAN = "0123456789abcdef0123456789abcdef"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/old.db"
    value: str = request.getfixturevalue("postgres_url")
    return value


def _job(name: str, fire_us: int, data: str | None) -> dict[str, object]:
    return {
        "name": name,
        "due_time": "2026-01-01T00:00:00Z",
        "data": data,
        "created_us": 1,
        "anchor_us": fire_us,
        "next_fire_us": fire_us,
        "tick_us": fire_us,
        "attempt": 1,
        "fired": 0,
        "generation": 7,
    }


async def test_rows_move_into_their_scopes_and_fire_once(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUETIME_APP_ID", "tasks-app")
    engine = create_engine(url)
    past = int((time.time() - 5) * 1e6)
    later = int((time.time() + 3600) * 1e6)
    await migrate(engine, "0006")  # the schema of the last version without scopes
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(tables.reminders),
            [{"id": "r1", "task_id": "t1", "position": 0, "fire_us": past, "state": "pending"}],
        )
        await conn.execute(
            sa.insert(tables.jobs),
            [
                _job("reminder-r1", past, '{"reminder_id": "r1"}'),
                _job("reminder-task-7", past, '{"mine": true}'),
                _job("duetime-maintenance-retention", later, None),
                _job("nightly", later, "1"),
            ],
        )
        await conn.execute(
            sa.insert(tables.dead_letters),
            [
                {
                    "id": "d0",  # a reminder's dead letter whose task was deleted since
                    "name": f"reminder-{ORPHAN}",
                    "data": '{"reminder_id": "gone"}',
                    "scheduled_us": past,
                    "failed_us": past,
                    "attempts": 4,
                    "error": "reminder not due",
                },
                {
                    "id": "d1",
                    "name": "nightly",
                    "data": "1",
                    "scheduled_us": past,
                    "failed_us": past,
                    "attempts": 4,
                    "error": "app answered 500",
                },
            ],
        )
    await migrate(engine)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(tables.jobs).order_by(tables.jobs.c.name))).all()
        dead = (
            (await conn.execute(sa.select(tables.dead_letters.c.name).order_by("id")))
            .scalars()
            .all()
        )
    by_name = {r.name: r for r in rows}
    assert sorted(by_name) == [
        "app||default||tasks-app||nightly",
        "app||default||tasks-app||reminder-task-7",
        "duetime||duetime-maintenance-retention",
        "duetime||reminder-r1",
    ]
    moved = by_name["duetime||reminder-r1"]
    assert (moved.next_fire_us, moved.attempt, moved.generation) == (past, 1, 7)
    assert dead == [f"duetime||reminder-{ORPHAN}", "app||default||tasks-app||nightly"]

    own, app = RecordingHandler(), RecordingHandler()
    scheduler = EmbeddedJobScheduler(SqlJobStore(engine=engine))
    scheduler.add_handler(REMINDER_JOB_PREFIX, own)
    scheduler.add_handler(APP_SCOPES, app)
    await scheduler.start()
    try:
        await own.wait_for(1)
        await app.wait_for(1)
        await _settle()
    finally:
        await scheduler.stop()
        await engine.dispose()
    assert own.names() == ["duetime||reminder-r1"]
    assert app.names() == ["app||default||tasks-app||reminder-task-7"]


async def _settle() -> None:
    await asyncio.sleep(0.5)  # a second firing would have arrived by now
