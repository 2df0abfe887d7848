"""The embedded engine's in-memory view of the earliest-due jobs.

Invariant: the window holds every stored job whose key `(next_fire_us, name)` is <= `bound`
(every stored job when `bound` is None), except jobs whose trigger is running. The engine
reports every change it stores (`note`) and tops the window up from the database in the
background (`begin_load`/`finish_load`) when it runs low. A load may read the database before
changes made while it ran, so those changes are replayed over what it read.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from duetime.jobs.store import StoredJob

Key = tuple[int, str]
_NOTHING: Key = (-(2**63), "")  # bound before the first load: no job is held


class DueWindow:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.bound: Key | None = _NOTHING
        self._rows: dict[str, StoredJob] = {}
        self._heap: list[tuple[int, str, int]] = []  # (next_fire_us, name, generation)
        self._loading = False
        # changes made while loading: (row or None if deleted, whether note() applied it)
        self._changed: dict[str, tuple[StoredJob | None, bool]] = {}
        self._deleted_prefixes: list[str] = []

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: str) -> bool:
        return name in self._rows

    def note(self, name: str, row: StoredJob | None) -> bool:
        """The job `name` is now stored as `row` (None: deleted). True if it became the
        earliest job held, so the loop must re-arm its timer."""
        beyond = row is not None and self.bound is not None and row.key > self.bound
        if self._loading:
            self._changed[name] = (row, not beyond)
        if row is None or beyond:
            self._rows.pop(name, None)
            return False
        self._hold(row)
        if len(self._rows) > 2 * self.capacity and not self._loading:
            self._trim()
        return self._heap[0][1] == name

    def forget_prefix(self, prefix: str) -> None:
        """Every job whose name starts with `prefix` was deleted."""
        if self._loading:
            self._deleted_prefixes.append(prefix)
            for name in [n for n in self._changed if n.startswith(prefix)]:
                self._changed[name] = (None, True)
        for name in [n for n in self._rows if n.startswith(prefix)]:
            del self._rows[name]

    def pop_due(self, now_us: int) -> list[StoredJob]:
        """Remove and return the jobs due at `now_us`, earliest first."""
        due = []
        heap = self._heap
        while heap and heap[0][0] <= now_us:
            fire_us, name, generation = heapq.heappop(heap)
            row = self._rows.get(name)
            if row is None or row.generation != generation or row.next_fire_us != fire_us:
                continue  # deleted, replaced or moved since it was pushed
            del self._rows[name]
            due.append(row)
        return due

    def next_due_us(self) -> int | None:
        heap = self._heap
        while heap:
            fire_us, name, generation = heap[0]
            row = self._rows.get(name)
            if row is not None and row.generation == generation and row.next_fire_us == fire_us:
                return fire_us
            heapq.heappop(heap)
        return None

    @property
    def wants_more(self) -> bool:
        """More stored jobs exist beyond the window and it has run low."""
        low = max(self.capacity // 2, 1)
        return not self._loading and self.bound is not None and len(self._rows) < low

    def begin_load(self) -> tuple[Key | None, int]:
        """Start a top-up: returns (load the jobs with key > this, this many)."""
        self._loading = True
        self._changed = {}
        self._deleted_prefixes = []
        after = None if self.bound == _NOTHING else self.bound
        return after, max(self.capacity - len(self._rows), self.capacity // 2, 1)

    def abort_load(self) -> None:
        self._loading = False

    def finish_load(
        self, rows: Sequence[StoredJob], limit: int, running: Mapping[str, int]
    ) -> None:
        """Add the loaded `rows` (the `limit` next jobs by key, or fewer if that was all).
        `running` maps the names of jobs whose trigger is running to their generation."""
        self._loading = False
        bound = rows[-1].key if len(rows) >= limit else None
        changed, deleted = self._changed, self._deleted_prefixes
        self.bound = bound
        for row in rows:
            name = row.job.name
            if running.get(name) == row.generation or name in changed:
                continue
            if any(name.startswith(p) for p in deleted):
                continue
            self._hold(row)
        # Changes note() applied are in the window already (or ran since); only those it
        # turned away, being past the old bound, may now belong in it.
        for change, applied in changed.values():
            if change is not None and not applied and (bound is None or change.key <= bound):
                self._hold(change)

    def _hold(self, row: StoredJob) -> None:
        self._rows[row.job.name] = row
        heapq.heappush(self._heap, (row.next_fire_us, row.job.name, row.generation))

    def _trim(self) -> None:
        kept = sorted(self._rows.values(), key=lambda r: r.key)[: self.capacity]
        self._rows = {r.job.name: r for r in kept}
        self._heap = [(r.next_fire_us, r.job.name, r.generation) for r in kept]
        heapq.heapify(self._heap)
        self.bound = kept[-1].key
