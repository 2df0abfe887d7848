"""`StorageHealth` on real databases: SQLite out of pages (`max_page_count`) and PostgreSQL
out of disk (a tablespace on a small tmpfs, SQLSTATE 53100)."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.db.engine import create_engine
from duetime.db.storage import StorageHealth, storage_full


async def _fill(engine: AsyncEngine, table: str) -> DBAPIError:
    for _ in range(10_000):
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql(f"INSERT INTO {table} (v) VALUES ('{'x' * 4000}')")
        except DBAPIError as exc:
            return exc
    raise AssertionError("the database never filled up")


async def test_sqlite_out_of_pages_is_full_until_a_write_commits(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'small.db'}")
    health = StorageHealth()
    health.watch(engine)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (v TEXT)")
            await conn.exec_driver_sql("PRAGMA max_page_count = 20")  # the one pooled connection
        failure = await _fill(engine, "t")
        assert storage_full(failure) == "SQLite: database or disk is full"
        problem = health.problem()
        assert problem is not None and problem.startswith("storage is full since ")
        assert problem.endswith(": SQLite: database or disk is full")

        async with engine.connect() as conn:  # a read that commits is no proof of room
            await conn.exec_driver_sql("SELECT count(*) FROM t")
            await conn.commit()
        assert health.problem() == problem

        async with engine.begin() as conn:
            await conn.exec_driver_sql("PRAGMA max_page_count = 100000")
            await conn.exec_driver_sql("INSERT INTO t (v) VALUES ('room again')")
        assert health.problem() is None
    finally:
        await engine.dispose()


async def test_sqlite_errors_other_than_full_are_not_storage(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    health = StorageHealth()
    health.watch(engine)
    try:
        with pytest.raises(DBAPIError) as caught:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("INSERT INTO missing (v) VALUES (1)")
        assert storage_full(caught.value) is None and health.problem() is None
    finally:
        await engine.dispose()


@pytest.fixture
def small_tablespace_dir() -> Iterator[Path]:
    disk = Path(tempfile.mkdtemp(prefix="duetime-pgdisk-"))  # the postgres user reaches it
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs (needs root): {mounted.stderr!r}"
    try:
        pw = pwd.getpwnam("postgres")
        os.chown(disk, pw.pw_uid, pw.pw_gid)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
        disk.rmdir()


async def test_postgresql_out_of_disk_is_full(
    postgres_url: str, small_tablespace_dir: Path
) -> None:
    engine = create_engine(postgres_url)
    health = StorageHealth()
    health.watch(engine)
    space = "tiny_" + small_tablespace_dir.name.rsplit("-", 1)[1].lower()
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(
                f"CREATE TABLESPACE {space} LOCATION '{small_tablespace_dir}'"
            )
            await conn.exec_driver_sql(f"CREATE TABLE t (v TEXT) TABLESPACE {space}")
            await conn.exec_driver_sql("ALTER TABLE t ALTER COLUMN v SET STORAGE PLAIN")
        failure = await _fill(engine, "t")
        reason = storage_full(failure)
        assert reason is not None and reason.startswith("PostgreSQL: "), failure
        assert "No space left on device" in reason
        assert health.problem() is not None
    finally:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("DROP TABLE IF EXISTS t")
            await conn.exec_driver_sql(f"DROP TABLESPACE IF EXISTS {space}")
        await engine.dispose()
