"""Password hashes: argon2id through argon2-cffi (`Argon2PasswordHasher`).

Hashing is slow and memory-hungry on purpose (64 MiB and ≈ 50 ms per hash with the
library's RFC 9106 defaults), so it runs in worker threads, at most `concurrency` at once:
the event loop keeps serving, and a burst of sign-ins cannot take all the memory.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_DUMMY_PASSWORD = "duetime: no account has this password"


class PasswordHasher(Protocol):
    """Hashes passwords and checks them against stored hashes.

    Contract: `hash` returns a self-describing string (algorithm and parameters inside)
    that `verify` accepts; `verify` returns False for a wrong password or a hash it cannot
    read, and never raises for either; `needs_rehash` is True when a hash was made with
    other parameters than today's; `dummy_verify` costs what a `verify` costs, for callers
    that must take as long when there is no hash to check (an unknown email)."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    async def dummy_verify(self, password: str) -> None: ...


class Argon2PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106's second recommended option: t=3,
    m=64 MiB, p=4) unless told otherwise; tests pass cheaper parameters."""

    def __init__(
        self,
        *,
        time_cost: int | None = None,
        memory_cost: int | None = None,
        parallelism: int | None = None,
        concurrency: int = 4,
    ) -> None:
        defaults = _Argon2()
        self._hasher = _Argon2(
            time_cost=time_cost or defaults.time_cost,
            memory_cost=memory_cost or defaults.memory_cost,
            parallelism=parallelism or defaults.parallelism,
            type=Type.ID,
        )
        self._concurrency = concurrency
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self._dummy: str | None = None

    @property
    def parameters(self) -> tuple[int, int, int]:
        """(time cost, memory cost in KiB, parallelism)."""
        h = self._hasher
        return h.time_cost, h.memory_cost, h.parallelism

    def _slot(self) -> asyncio.Semaphore:
        """This event loop's semaphore (the CLI runs one loop per command, tests one per
        test: a semaphore is bound to the loop it first waited in)."""
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None:
            self._slots = {k: v for k, v in self._slots.items() if not k.is_closed()}
            slot = self._slots[loop] = asyncio.Semaphore(self._concurrency)
        return slot

    async def hash(self, password: str) -> str:
        async with self._slot():
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slot():
            return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    async def dummy_verify(self, password: str) -> None:
        if self._dummy is None:
            self._dummy = await self.hash(_DUMMY_PASSWORD)
        await self.verify(self._dummy, password)
