"""Group commit: many concurrent callers, one database round trip per batch.

With SQLite every statement is a hop to the driver's thread (≈0.2 ms here), so writing what
concurrent requests submit together, in one transaction, is what makes high rates possible.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`await submit(item)` returns `flush(batch)[i]` for the item's place in its batch.

    Items waiting while a flush runs form the next batch (at most `max_batch`). If `flush`
    raises, every caller of that batch gets the exception.
    """

    def __init__(
        self, flush: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int = 1000
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        return await self.submit_nowait(item)

    def submit_nowait(self, item: T) -> asyncio.Future[R]:
        """Queue `item`; the future holds its result once its batch is flushed."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="duetime-batcher")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return future

    async def close(self) -> None:
        """Call once no `submit` is waiting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < self._max_batch:
                batch.append(self._queue.get_nowait())
            try:
                results = await self._flush([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
