"""Migration 0008 (the `jobs` branch from 0001) gives every job an app-404 count, on SQLite
and PostgreSQL: an app's database at 0007 and a jobs-only database at 0001 both get it, the
jobs-only one without the app's tables, and the jobs stored before read as never answered
404."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from duetime.db import tables
from duetime.db.engine import create_engine, migrate, script_heads
from duetime.jobs.sql_store import SqlJobStore

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
NAME = "app||default||app||nightly"
OLD_JOB = {
    "name": NAME,
    "schedule": "@every 1h",
    "created_us": 1,
    "anchor_us": 2,
    "next_fire_us": 2,
    "tick_us": 2,
    "attempt": 0,
    "fired": 5,
    "generation": 7,
}


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/old.db"
    value: str = request.getfixturevalue("postgres_url")
    return value


async def _at(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, revision)
        async with engine.begin() as conn:
            await conn.execute(sa.insert(tables.jobs), [OLD_JOB])
    finally:
        await engine.dispose()


async def _versions_and_tables(url: str) -> tuple[list[str], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = sa.text("SELECT version_num FROM alembic_version ORDER BY version_num")
            versions = list((await conn.execute(query)).scalars())
            names = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    return versions, names


(JOBS_HEAD,) = script_heads("jobs@head") or ()  # the head of the `jobs` branch
(APP_HEAD,) = (script_heads() or frozenset()) - {JOBS_HEAD}  # the app's own migrations


async def test_an_app_database_at_0007_gets_the_count(url: str) -> None:
    await _at(url, "0007")
    engine = create_engine(url)
    try:
        store = SqlJobStore(engine=engine)
        await store.open()
        row = await store.get(NAME)
    finally:
        await engine.dispose()
    assert row is not None and row.fired == 5
    assert (row.app_not_found, row.app_not_found_us) == (0, None)
    versions, _ = await _versions_and_tables(url)
    assert versions == [JOBS_HEAD, APP_HEAD]


async def test_a_jobs_only_database_gets_the_count_and_no_other_table(url: str) -> None:
    await _at(url, "0001")
    store = SqlJobStore(url)
    await store.open()
    try:
        row = await store.get(NAME)
    finally:
        await store.close()
    assert row is not None and (row.app_not_found, row.app_not_found_us) == (0, None)
    versions, names = await _versions_and_tables(url)
    assert versions == [JOBS_HEAD]
    assert names == {"alembic_version", "jobs", "job_dead_letters"}

    engine = create_engine(url)  # the app opens it one day: the rest of the schema joins
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    versions, names = await _versions_and_tables(url)
    assert versions == [JOBS_HEAD, APP_HEAD] and "tasks" in names
