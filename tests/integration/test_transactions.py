"""`duetime.db.helpers.transaction`: after-commit callbacks on a real SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.db.engine import create_engine
from duetime.db.helpers import transaction


class Boom(Exception):
    pass


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path}/tx.db")

    def foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA foreign_keys=ON")

    event.listen(engine.sync_engine, "connect", foreign_keys)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        await conn.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER"
                " REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    yield engine
    await engine.dispose()


async def test_callbacks_run_after_commit_in_commit_order_and_never_on_rollback(
    engine: AsyncEngine,
) -> None:
    seen: list[str] = []

    async def write(name: str, pause: float) -> None:
        async with transaction(engine) as tx:
            await tx.conn.execute(text("INSERT INTO parent DEFAULT VALUES"))
            await asyncio.sleep(pause)
            tx.after_commit(lambda: seen.append(name))

    await asyncio.gather(write("first", 0.05), write("second", 0))
    with pytest.raises(Boom):
        async with transaction(engine) as tx:
            await tx.conn.execute(text("INSERT INTO parent DEFAULT VALUES"))
            tx.after_commit(lambda: seen.append("rolled back"))
            raise Boom
    assert seen == ["first", "second"]
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM parent")) == 2


async def test_a_failed_commit_rechecks_instead_of_running_callbacks(
    engine: AsyncEngine,
) -> None:
    seen: list[str] = []
    rechecked = asyncio.Event()

    async def recheck() -> None:
        rechecked.set()

    with pytest.raises(IntegrityError):  # the deferred foreign key fails at COMMIT
        async with transaction(engine) as tx:
            await tx.conn.execute(text("INSERT INTO child (parent) VALUES (42)"))
            tx.after_commit(lambda: seen.append("committed"), if_unsure=recheck)
    await asyncio.wait_for(rechecked.wait(), 5)
    assert seen == []
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM child")) == 0


async def test_cancelling_the_caller_during_commit_does_not_cut_it_short(
    engine: AsyncEngine,
) -> None:
    seen: list[str] = []
    task: asyncio.Future[None] | None = None

    def cancel_the_caller(_conn: Any) -> None:  # runs as COMMIT is sent
        assert task is not None
        task.cancel()

    event.listen(engine.sync_engine, "commit", cancel_the_caller)

    async def write() -> None:
        async with transaction(engine) as tx:
            await tx.conn.execute(text("INSERT INTO parent DEFAULT VALUES"))
            tx.after_commit(lambda: seen.append("committed"))

    task = asyncio.ensure_future(write())
    with pytest.raises(asyncio.CancelledError):
        await task
    event.remove(engine.sync_engine, "commit", cancel_the_caller)
    assert seen == ["committed"]
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM parent")) == 1
