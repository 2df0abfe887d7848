"""An empty database gets duetime's schema from `duetime.db.tables` in one step, stamped at
the migration heads: it must be the schema the thirteen migrations build, on SQLite and on
PostgreSQL, column for column, index for index."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from duetime.db import engine as db_engine

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if request.param == "sqlite":
        return [f"sqlite:///{tmp_path}/migrated.db", f"sqlite:///{tmp_path}/created.db"]
    server = request.getfixturevalue("postgres_server")
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in names:
        server.psql(f"CREATE DATABASE {name}")
    request.addfinalizer(
        lambda: [server.psql(f"DROP DATABASE IF EXISTS {n} WITH (FORCE)") for n in names]
    )
    return [server.url(name) for name in names]


def _schema(connection: Connection) -> dict[str, Any]:
    found = inspect(connection)
    schema: dict[str, Any] = {}
    for table in found.get_table_names():
        columns = found.get_columns(table)
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in columns
            ],
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(table)
            ),
            "foreign keys": sorted(str(f) for f in found.get_foreign_keys(table)),
        }
    schema["versions"] = sorted(
        r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version"))
    )
    return schema


async def test_a_fresh_database_has_the_schema_the_migrations_build(two_urls: list[str]) -> None:
    schemas = []
    for url, how in zip(two_urls, ["alembic", "fresh"], strict=True):
        engine = db_engine.create_engine(url)
        try:
            async with engine.begin() as conn:
                if how == "alembic":
                    await conn.run_sync(db_engine._upgrade, "heads")
                else:
                    assert await conn.run_sync(db_engine._create_fresh)
            await db_engine.migrate(engine)  # at head either way: nothing more to do
            async with engine.connect() as conn:
                schemas.append(await conn.run_sync(_schema))
        finally:
            await engine.dispose()
    migrated, created = schemas
    assert set(created) == set(migrated)
    for table in migrated:
        assert created[table] == migrated[table], table
    assert migrated["versions"] == sorted(db_engine.script_heads() or ())


async def test_a_database_with_tables_is_never_created_over(tmp_path: Path) -> None:
    engine = db_engine.create_engine(f"sqlite:///{tmp_path}/other.db")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE someone_elses (id INTEGER)"))
            assert not await conn.run_sync(db_engine._create_fresh)
    finally:
        await engine.dispose()
