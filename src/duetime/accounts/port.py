"""The account store port; `SqlAccountStore` (duetime.accounts.store) is its adapter.

Times are integer microseconds since the Unix epoch (UTC), given by the caller: the store
never reads the clock. Emails reach it normalised (`duetime.accounts.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from duetime.accounts.model import Account, Invite, Session


class EmailTaken(Exception):
    """Another account has this email."""


class UserIdTaken(Exception):
    """Another account has this user id."""


class InviteInvalid(Exception):
    """No unused, unexpired invite has this code."""


@dataclass(frozen=True)
class FailureCount:
    """Failed sign-ins under one key since a moment: how many, and the oldest one's time
    (when the first of them leaves the window)."""

    count: int
    oldest_us: int | None


class AccountStore(Protocol):
    """Accounts, their sessions, failed sign-ins and invites.

    Contract: every method is one transaction; `create_account` and `set_disabled` write
    everything they say or nothing. Lookups of what is not there return None, not raise.
    """

    async def create_account(
        self, account: Account, *, invite_hash: str | None = None, now_us: int
    ) -> None:
        """Insert `account`; with `invite_hash`, use up that invite in the same transaction.
        Raises `EmailTaken`, `UserIdTaken` or `InviteInvalid` (then nothing is written)."""
        ...

    async def account_by_email(self, email: str) -> Account | None: ...

    async def account(self, user_id: str) -> Account | None: ...

    async def accounts(self) -> Sequence[Account]:
        """Every account, oldest first."""
        ...

    async def set_password(self, user_id: str, password_hash: str, now_us: int) -> bool:
        """False when there is no such account."""
        ...

    async def set_disabled(self, user_id: str, disabled: bool, now_us: int) -> bool:
        """Disabling also deletes the account's sessions. False when there is no such
        account."""
        ...

    async def add_session(self, session: Session, *, replacing: str | None = None) -> None:
        """Insert `session`; delete the session `replacing` (its id), if any, and the user's
        expired sessions (as of `session.created_us`) in the same transaction."""
        ...

    async def session(self, session_id: str) -> tuple[Session, Account] | None:
        """The session and its account, expired or not (the caller decides)."""
        ...

    async def touch_session(self, session_id: str, last_seen_us: int, expires_us: int) -> None: ...

    async def delete_session(self, session_id: str) -> None: ...

    async def delete_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete the user's sessions but `keep` (an id); how many were deleted."""
        ...

    async def record_failure(self, keys: Sequence[str], now_us: int, forget_before_us: int) -> None:
        """One failed sign-in under each key at `now_us`; failures older than
        `forget_before_us` (under any key) are deleted."""
        ...

    async def failures(self, keys: Sequence[str], since_us: int) -> dict[str, FailureCount]:
        """The failures under each key after `since_us` (every key is in the answer)."""
        ...

    async def clear_failures(self, key: str) -> None: ...

    async def add_invite(self, invite: Invite) -> None: ...
