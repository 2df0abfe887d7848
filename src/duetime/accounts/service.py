"""What the account routes and the `duetime users` commands do: sign-up, sign-in and
sign-out, password changes, operators' user management and invites.

Sign-in failures are counted in the database (`signin_failures`), not in memory: API
processes behind one load balancer share the count, a restart does not reset it, and an
attacker spreading guesses over replicas is still seen. A failure costs one insert; a
success one read. Counted per email and per client IP (`AccountPolicy`): once either has
`max_failures…` failures in the window, sign-in answers `RateLimited` with the seconds until
the oldest leaves it, without checking the password (no guess is tested while limited). A
successful sign-in clears its email's count, not its IP's.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NoReturn

from duetime.accounts.model import (
    MAX_PASSWORD,
    Account,
    AccountRuleError,
    Invite,
    Session,
    SignupMode,
    check_password,
    new_secret,
    normalize_email,
    normalize_password,
    secret_digest,
)
from duetime.accounts.passwords import PasswordHasher
from duetime.accounts.port import AccountStore, EmailTaken, InviteInvalid, UserIdTaken
from duetime.auth import check_user_id
from duetime.clock import Clock

MAX_TOKEN = 200
"""Longer cookie values are not looked up: duetime's tokens are 43 characters."""
TOUCH_EVERY_US = 60_000_000
"""A session's last-seen time (and its idle expiry) is written at most once a minute."""
SIGNIN_FAILED = "wrong email or password"


@dataclass(frozen=True)
class AccountPolicy:
    """The settings the service follows (from `DUETIME_SIGNUP`, `DUETIME_SESSION_*` and
    `DUETIME_SIGNIN_*`)."""

    signup: SignupMode = "open"
    session_idle: timedelta = timedelta(days=14)
    session_max_age: timedelta = timedelta(days=90)
    max_failures_per_email: int = 5
    max_failures_per_ip: int = 20
    failure_window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignedIn:
    """A new session: `token` goes into the cookie, and only there."""

    account: Account
    session: Session
    token: str


class SignInFailed(Exception):
    """Wrong password, or no account has the email: one message for both."""

    def __init__(self) -> None:
        super().__init__(SIGNIN_FAILED)


class AccountDisabled(Exception):
    """The password was right but an operator disabled the account."""


class RateLimited(Exception):
    """Too many failed sign-ins; `retry_after` is in whole seconds (at least 1)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


class SignupRefused(Exception):
    """Sign-up is closed on this server."""


class AccountNotFound(Exception):
    """No account has this email or user id."""


class AccountExists(Exception):
    """The email (or, from the CLI, the user id) belongs to an account already; the
    message says which."""


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def new_user_id() -> str:
    """The owner id of a new account: `u` and 32 random hex digits."""
    return "u" + secrets.token_hex(16)


class AccountService:
    def __init__(
        self,
        store: AccountStore,
        hasher: PasswordHasher,
        clock: Clock,
        policy: AccountPolicy | None = None,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self.policy = policy or AccountPolicy()

    # -- people ----------------------------------------------------------------------------
    async def sign_up(
        self,
        email: str,
        password: str,
        *,
        invite: str | None = None,
        user_agent: str | None = None,
        replacing: str | None = None,
    ) -> SignedIn:
        """A new account under `policy.signup`, signed in. Raises `SignupRefused` when
        sign-up is closed, `AccountRuleError` for a bad field (a missing or unusable
        `invite` in invite mode too) and `AccountExists` for a taken email."""
        if self.policy.signup == "closed":
            raise SignupRefused(
                "sign-up is closed on this server; an operator creates accounts "
                "(`duetime users create EMAIL`)"
            )
        invite_hash = None
        if self.policy.signup == "invite":
            if not invite or not invite.strip():
                raise AccountRuleError(
                    "invite", "an invite code is required to sign up on this server"
                )
            invite_hash = secret_digest(invite.strip())
        account = await self._new_account(email, password, invite_hash=invite_hash)
        return await self._start_session(account, user_agent=user_agent, replacing=replacing)

    async def sign_in(
        self,
        email: str,
        password: str,
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
        replacing: str | None = None,
    ) -> SignedIn:
        """A new session for the account (never the one `replacing` names: its token, if
        any, is revoked). Raises `AccountRuleError` for a malformed email or an over-long
        password, `RateLimited`, `SignInFailed` (the same for a wrong password and an
        unknown email, after the same argon2 work) and `AccountDisabled`."""
        address = normalize_email(email)
        if len(password) > MAX_PASSWORD:
            raise AccountRuleError("password", f"longer than {MAX_PASSWORD} characters")
        keys = [_key("email", address)]
        if client_ip:
            keys.append(_key("ip", client_ip))
        await self._check_rate(keys)
        account = await self._store.account_by_email(address)
        text = normalize_password(password)
        if account is None:
            await self._hasher.dummy_verify(text)
            await self._fail(keys)
        elif not await self._hasher.verify(account.password_hash, text):
            await self._fail(keys)
        if account.disabled:
            raise AccountDisabled("this account is disabled; ask the operator of this server")
        if self._hasher.needs_rehash(account.password_hash):
            fresh = await self._hasher.hash(text)
            await self._store.set_password(account.user_id, fresh, self._clock.now_micros())
            account = replace(account, password_hash=fresh)
        await self._store.clear_failures(keys[0])
        return await self._start_session(account, user_agent=user_agent, replacing=replacing)

    async def sign_out(self, token: str) -> None:
        """End the session of `token` (nothing happens for an unknown one)."""
        if 0 < len(token) <= MAX_TOKEN:
            await self._store.delete_session(secret_digest(token))

    async def authenticate(self, token: str) -> tuple[Session, Account] | None:
        """The live session of a cookie's `token` and its account, or None when it is
        unknown, expired, signed out or its account is disabled. Use moves its idle expiry
        forward (written at most once a minute), never past its maximum age."""
        if not 0 < len(token) <= MAX_TOKEN:
            return None
        found = await self._store.session(secret_digest(token))
        if found is None:
            return None
        session, account = found
        now = self._clock.now_micros()
        if session.expires_us <= now or account.disabled:
            await self._store.delete_session(session.id)
            return None
        if now - session.last_seen_us >= TOUCH_EVERY_US:
            expires = min(now + _us(self.policy.session_idle), self._max_expiry(session))
            await self._store.touch_session(session.id, now, expires)
            session = replace(session, last_seen_us=now, expires_us=expires)
        return session, account

    async def change_password(
        self, user_id: str, current: str, new: str, *, keep_session: str | None = None
    ) -> int:
        """Set a new password after checking the current one, and end every other session
        of the account (all of them when `keep_session`, an id, is None); returns how many
        ended. Raises `AccountNotFound`, `RateLimited` (wrong current passwords count as
        failed sign-ins of the email) and `AccountRuleError` (`current_password`,
        `new_password`)."""
        account = await self._store.account(user_id)
        if account is None:
            raise AccountNotFound("no account has this user id")
        if len(current) > MAX_PASSWORD:
            raise AccountRuleError("current_password", f"longer than {MAX_PASSWORD} characters")
        fresh = check_password(new, account.email, field="new_password")
        keys = [_key("email", account.email)]
        await self._check_rate(keys)
        if not await self._hasher.verify(account.password_hash, normalize_password(current)):
            await self._store.record_failure(keys, *self._failure_times())
            raise AccountRuleError("current_password", "is not your current password")
        if fresh == normalize_password(current):
            raise AccountRuleError("new_password", "is the same as the current password")
        now = self._clock.now_micros()
        await self._store.set_password(user_id, await self._hasher.hash(fresh), now)
        return await self._store.delete_sessions(user_id, keep=keep_session)

    # -- operators -------------------------------------------------------------------------
    async def create_user(
        self, email: str, password: str, *, admin: bool = False, user_id: str | None = None
    ) -> Account:
        """An account made by an operator, whatever `policy.signup` says. `user_id` gives it
        an existing owner id (a bearer token user's `sub`), so they keep their tasks.
        Raises `AccountRuleError` (`email`, `password`, `user_id`) and `AccountExists`."""
        if user_id is not None:
            try:
                check_user_id(user_id)
            except ValueError as exc:
                raise AccountRuleError("user_id", str(exc)) from None
        return await self._new_account(email, password, admin=admin, user_id=user_id)

    async def list_users(self) -> Sequence[Account]:
        return await self._store.accounts()

    async def set_disabled(self, email: str, disabled: bool = True) -> Account:
        """Disable (ending every session) or enable the account; raises `AccountNotFound`."""
        account = await self._store.account_by_email(normalize_email(email))
        if account is None:
            raise AccountNotFound(f"no account has the email {normalize_email(email)}")
        now = self._clock.now_micros()
        await self._store.set_disabled(account.user_id, disabled, now)
        return replace(account, disabled=disabled, updated_us=now)

    async def create_invite(self, ttl: timedelta = timedelta(days=7)) -> str:
        """A new single-use sign-up code, valid for `ttl`; only its digest is stored."""
        if ttl <= timedelta(0):
            raise AccountRuleError("ttl", "must be positive")
        code = new_secret(16)
        now = self._clock.now_micros()
        await self._store.add_invite(Invite(secret_digest(code), now, now + _us(ttl)))
        return code

    # -- helpers ---------------------------------------------------------------------------
    async def _new_account(
        self,
        email: str,
        password: str,
        *,
        admin: bool = False,
        user_id: str | None = None,
        invite_hash: str | None = None,
    ) -> Account:
        address = normalize_email(email)
        text = check_password(password, address)
        now = self._clock.now_micros()
        account = Account(
            user_id=user_id or new_user_id(),
            email=address,
            password_hash=await self._hasher.hash(text),
            is_admin=admin,
            disabled=False,
            created_us=now,
            updated_us=now,
        )
        try:
            await self._store.create_account(account, invite_hash=invite_hash, now_us=now)
        except EmailTaken:
            raise AccountExists(f"an account with the email {address} exists already") from None
        except UserIdTaken:
            raise AccountExists(f"an account with the user id {user_id} exists already") from None
        except InviteInvalid:
            raise AccountRuleError(
                "invite", "not a valid invite code (unknown, used or expired)"
            ) from None
        return account

    async def _start_session(
        self, account: Account, *, user_agent: str | None, replacing: str | None
    ) -> SignedIn:
        token = new_secret(32)
        now = self._clock.now_micros()
        session = Session(
            id=secret_digest(token),
            user_id=account.user_id,
            csrf_secret=new_secret(32),
            created_us=now,
            last_seen_us=now,
            expires_us=now + min(_us(self.policy.session_idle), _us(self.policy.session_max_age)),
            user_agent=(user_agent or None) and user_agent[:400],
        )
        old = secret_digest(replacing) if replacing and len(replacing) <= MAX_TOKEN else None
        await self._store.add_session(session, replacing=old)
        return SignedIn(account, session, token)

    def _max_expiry(self, session: Session) -> int:
        return session.created_us + _us(self.policy.session_max_age)

    def _failure_times(self) -> tuple[int, int]:
        now = self._clock.now_micros()
        return now, now - _us(self.policy.failure_window)

    async def _check_rate(self, keys: list[str]) -> None:
        now, since = self._failure_times()
        counts = await self._store.failures(keys, since)
        limits = [self.policy.max_failures_per_email, self.policy.max_failures_per_ip]
        waits = []
        for key, limit in zip(keys, limits, strict=False):
            found = counts[key]
            if found.count >= limit and found.oldest_us is not None:
                left = found.oldest_us + _us(self.policy.failure_window) - now
                waits.append(max(1, math.ceil(left / 1_000_000)))
        if waits:
            raise RateLimited(max(waits))

    async def _fail(self, keys: list[str]) -> NoReturn:
        await self._store.record_failure(keys, *self._failure_times())
        raise SignInFailed


def _key(kind: str, value: str) -> str:
    """What `signin_failures` stores: a digest, so the table holds no addresses."""
    return secret_digest(f"{kind}:{value}")
