"""`JobStore` in process memory: for tests and for throw-away engines."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from duetime.jobs.model import DeadLetter, JobExistsError
from duetime.jobs.store import JobStore, Outcome, StoredJob


class MemoryJobStore(JobStore):
    def __init__(self) -> None:
        self._jobs: dict[str, StoredJob] = {}
        self._dead: dict[str, DeadLetter] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def insert(self, rows: Sequence[StoredJob], *, overwrite: bool) -> None:
        if not overwrite:
            for row in rows:
                if row.job.name in self._jobs:
                    raise JobExistsError(row.job.name)
        for row in rows:
            self._jobs[row.job.name] = row

    async def get(self, name: str) -> StoredJob | None:
        return self._jobs.get(name)

    async def delete(self, name: str) -> bool:
        return self._jobs.pop(name, None) is not None

    async def delete_prefix(self, prefix: str) -> int:
        names = [n for n in self._jobs if n.startswith(prefix)]
        for n in names:
            del self._jobs[n]
        return len(names)

    async def list_jobs(self, prefix: str, *, limit: int, after: str) -> list[StoredJob]:
        names = sorted(n for n in self._jobs if n.startswith(prefix) and n > after)
        return [self._jobs[n] for n in names[:limit]]

    async def earliest(
        self, limit: int, *, after: tuple[int, str] | None = None
    ) -> list[StoredJob]:
        rows = (
            self._jobs.values()
            if after is None
            else [r for r in self._jobs.values() if r.key > after]
        )
        return heapq.nsmallest(limit, rows, key=lambda r: r.key)

    async def apply(self, outcomes: Sequence[Outcome]) -> list[bool]:
        applied = []
        for outcome in outcomes:
            if outcome.dead_letter is not None:
                self._dead[outcome.dead_letter.id] = outcome.dead_letter
            current = self._jobs.get(outcome.name)
            ok = current is not None and current.generation == outcome.generation
            if ok:
                if outcome.update is None:
                    del self._jobs[outcome.name]
                else:
                    self._jobs[outcome.name] = outcome.update
            applied.append(ok)
        return applied

    async def dead_letters(self, prefix: str, *, limit: int, after: str) -> list[DeadLetter]:
        ids = sorted(i for i, d in self._dead.items() if d.name.startswith(prefix) and i > after)
        return [self._dead[i] for i in ids[:limit]]

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        return self._dead.get(dead_letter_id)

    async def put_dead_letter(self, dead_letter: DeadLetter) -> None:
        self._dead[dead_letter.id] = dead_letter

    async def delete_dead_letter(self, dead_letter_id: str) -> bool:
        return self._dead.pop(dead_letter_id, None) is not None
