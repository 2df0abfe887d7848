"""The lean aiosqlite adapter: a failed open leaves no worker thread to die on a closed loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from duetime.db.engine import create_engine


def test_a_failed_open_ends_its_worker_before_the_loop_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    died: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))

    async def attempt() -> None:
        engine = create_engine("sqlite:////proc/no/such.db")
        try:
            with pytest.raises(Exception, match="unable to open database file"):
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()

    for _ in range(20):  # the race lost about half the time before the fix
        asyncio.run(attempt())
    workers = [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]
    for worker in workers:
        worker.join(2)
    assert died == []
    assert not [t for t in workers if t.is_alive()]
