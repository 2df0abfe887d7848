"""A database at head starts without alembic; one behind it is still upgraded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from duetime.db import engine as db_engine
from duetime.jobs.sql_store import SqlJobStore


async def _versions(url: str) -> set[str]:
    engine = db_engine.create_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))
            }
    finally:
        await engine.dispose()


async def test_at_head_alembic_is_not_run_and_behind_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    await db_engine.prepare(url)
    assert await _versions(url) == db_engine.script_heads()

    def refuse(*_args: object) -> None:
        raise AssertionError("alembic ran on a database at head")

    real = db_engine._upgrade
    monkeypatch.setattr(db_engine, "_upgrade", refuse)
    await db_engine.prepare(url)  # at head: no upgrade

    jobs_only = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setattr(db_engine, "_upgrade", real)
    store = SqlJobStore(jobs_only)
    await store.open()
    await store.close()
    assert await _versions(jobs_only) == db_engine.script_heads("jobs@head")
    monkeypatch.setattr(db_engine, "_upgrade", refuse)
    store = SqlJobStore(jobs_only)
    await store.open()  # at the jobs branch's head: no upgrade
    await store.close()

    # the jobs-only database is behind "heads": the full schema is upgraded onto it
    monkeypatch.setattr(db_engine, "_upgrade", real)
    await db_engine.prepare(jobs_only)
    assert await _versions(jobs_only) == db_engine.script_heads()
