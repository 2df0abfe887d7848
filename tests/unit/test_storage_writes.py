"""Which statements count as writes for the storage-full flag (db/storage.py)."""

from __future__ import annotations

import pytest

from duetime.db.storage import writes


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO jobs VALUES (1)",
        "  update jobs SET a = 1",
        "DELETE FROM jobs",
        "WITH due AS (SELECT id FROM jobs) DELETE FROM jobs WHERE id IN (SELECT id FROM due)",
        "with x as (select 1) insert into t select * from x",
        "CREATE TABLE t (a int)",
    ],
)
def test_writes(statement: str) -> None:
    assert writes(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1",
        "  select * from jobs",
        "PRAGMA page_count",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n",
        "BEGIN",
    ],
)
def test_reads(statement: str) -> None:
    assert not writes(statement)
