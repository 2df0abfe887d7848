"""`SqlAccountStore` on SQLite and PostgreSQL, and the account service on top of it (with
argon2 at cheap parameters and a manual clock): uniqueness, invites, sessions, the
sign-in limit, rehash on sign-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.accounts.model import Account, AccountRuleError, Invite, Session, secret_digest
from duetime.accounts.passwords import Argon2PasswordHasher
from duetime.accounts.port import EmailTaken, InviteInvalid, UserIdTaken
from duetime.accounts.service import (
    AccountDisabled,
    AccountExists,
    AccountPolicy,
    AccountService,
    RateLimited,
    SignInFailed,
    SignupRefused,
)
from duetime.accounts.store import SqlAccountStore
from duetime.db.engine import create_engine, migrate
from duetime.db.tables import sessions, signin_failures
from duetime.testing import ManualClock

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
US = 1_000_000
CHEAP = {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1}
PASSWORD = "correct horse battery"


@dataclass
class Parts:
    engine: AsyncEngine
    store: SqlAccountStore
    clock: ManualClock

    def service(self, **policy: object) -> AccountService:
        hasher = Argon2PasswordHasher(**CHEAP)
        return AccountService(self.store, hasher, self.clock, AccountPolicy(**policy))  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def parts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Parts]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/accounts.db"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    await migrate(engine)
    yield Parts(engine, SqlAccountStore(engine), ManualClock(T0))
    await engine.dispose()


def account(user_id: str = "u1", email: str = "alice@example.com") -> Account:
    return Account(user_id, email, "$argon2id$…", False, False, 1, 1)


def session(sid: str, user_id: str = "u1", *, at: int = 10, expires: int = 100) -> Session:
    return Session(sid, user_id, "csrf-" + sid, at, at, expires, "pytest")


async def count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


# -- the store ------------------------------------------------------------------------------


async def test_accounts_are_unique_by_email_and_by_user_id(parts: Parts) -> None:
    store = parts.store
    await store.create_account(account(), now_us=1)
    with pytest.raises(EmailTaken):
        await store.create_account(account("u2"), now_us=2)
    with pytest.raises(UserIdTaken):
        await store.create_account(account("u1", "bob@example.com"), now_us=2)
    await store.create_account(account("u2", "bob@example.com"), now_us=2)
    assert [a.email for a in await store.accounts()] == ["alice@example.com", "bob@example.com"]
    assert await store.account_by_email("alice@example.com") == account()
    assert await store.account("u2") == account("u2", "bob@example.com")
    assert await store.account_by_email("carol@example.com") is None


async def test_an_invite_is_used_once_with_the_account_and_not_when_it_fails(
    parts: Parts,
) -> None:
    store = parts.store
    await store.add_invite(Invite("code-1", created_us=1, expires_us=1000))
    await store.add_invite(Invite("code-old", created_us=1, expires_us=5))
    await store.create_account(account(), now_us=1)
    with pytest.raises(EmailTaken):  # the invite is not used up by a failed sign-up
        await store.create_account(account("u2"), invite_hash="code-1", now_us=10)
    await store.create_account(account("u2", "bob@example.com"), invite_hash="code-1", now_us=10)
    with pytest.raises(InviteInvalid):
        await store.create_account(account("u3", "c@example.com"), invite_hash="code-1", now_us=11)
    with pytest.raises(InviteInvalid):  # expired
        await store.create_account(
            account("u3", "c@example.com"), invite_hash="code-old", now_us=11
        )
    with pytest.raises(InviteInvalid):
        await store.create_account(account("u3", "c@example.com"), invite_hash="nope", now_us=11)
    assert await store.account("u3") is None


async def test_sessions_join_their_account_and_are_replaced_and_deleted(parts: Parts) -> None:
    store = parts.store
    await store.create_account(account(), now_us=1)
    await store.add_session(session("s-old", at=10, expires=20))
    await store.add_session(session("s1", at=30, expires=100))  # deletes the expired s-old
    assert await store.session("s-old") is None
    found = await store.session("s1")
    assert found == (session("s1", at=30, expires=100), account())
    await store.add_session(session("s2", at=40, expires=100), replacing="s1")
    assert await store.session("s1") is None and await store.session("s2") is not None
    await store.touch_session("s2", 50, 150)
    found = await store.session("s2")
    assert found is not None and (found[0].last_seen_us, found[0].expires_us) == (50, 150)
    await store.add_session(session("s3", at=60, expires=200))
    await store.add_session(session("s4", at=60, expires=200))
    assert await store.delete_sessions("u1", keep="s3") == 2
    assert await store.session("s3") is not None and await store.session("s4") is None
    await store.delete_session("s3")
    assert await count(parts.engine, sessions) == 0


async def test_disabling_ends_every_session_of_the_account(parts: Parts) -> None:
    store = parts.store
    await store.create_account(account(), now_us=1)
    await store.create_account(account("u2", "bob@example.com"), now_us=1)
    await store.add_session(session("a1"))
    await store.add_session(session("a2"))
    await store.add_session(session("b1", "u2"))
    assert await store.set_disabled("u1", True, 50)
    assert await store.session("a1") is None and await store.session("a2") is None
    assert await store.session("b1") is not None
    assert (await store.account("u1")).disabled  # type: ignore[union-attr]
    assert await store.set_disabled("u1", False, 60)
    assert not (await store.account("u1")).disabled  # type: ignore[union-attr]
    assert not await store.set_disabled("nobody", True, 60)
    assert await store.set_password("u1", "$new", 70)
    assert (await store.account("u1")).password_hash == "$new"  # type: ignore[union-attr]
    assert not await store.set_password("nobody", "$new", 70)


async def test_failures_are_counted_per_key_in_the_window_and_forgotten(parts: Parts) -> None:
    store = parts.store
    for at in (10, 20, 30):
        await store.record_failure(["email-a", "ip-1"], at, forget_before_us=0)
    await store.record_failure(["email-b", "ip-1"], 40, forget_before_us=0)
    counts = await store.failures(["email-a", "ip-1", "email-c"], since_us=15)
    assert (counts["email-a"].count, counts["email-a"].oldest_us) == (2, 20)
    assert (counts["ip-1"].count, counts["ip-1"].oldest_us) == (3, 20)
    assert (counts["email-c"].count, counts["email-c"].oldest_us) == (0, None)
    await store.clear_failures("email-a")
    assert (await store.failures(["email-a"], 0))["email-a"].count == 0
    await store.record_failure(["x"], 100, forget_before_us=35)  # drops those before 35
    assert await count(parts.engine, signin_failures) == 3  # email-b, ip-1 at 40; x


# -- the service on the store ---------------------------------------------------------------


async def test_sign_up_and_sign_in_give_new_sessions_stored_by_digest(parts: Parts) -> None:
    service = parts.service()
    first = await service.sign_up(" Alice@Example.com ", PASSWORD)
    assert first.account.email == "alice@example.com" and first.account.user_id.startswith("u")
    assert first.session.id == secret_digest(first.token) != first.token
    again = await service.sign_in("ALICE@example.com", PASSWORD, replacing=first.token)
    assert again.token != first.token and again.session.csrf_secret != first.session.csrf_secret
    assert await service.authenticate(first.token) is None  # fixation: the old one is gone
    found = await service.authenticate(again.token)
    assert found is not None and found[1].user_id == first.account.user_id
    await service.sign_out(again.token)
    assert await service.authenticate(again.token) is None
    with pytest.raises(AccountExists, match=r"alice@example\.com"):
        await service.sign_up("alice@EXAMPLE.com", PASSWORD)


async def test_wrong_password_and_unknown_email_fail_alike(parts: Parts) -> None:
    service = parts.service()
    await service.sign_up("alice@example.com", PASSWORD)
    with pytest.raises(SignInFailed) as wrong:
        await service.sign_in("alice@example.com", PASSWORD + "!")
    with pytest.raises(SignInFailed) as unknown:
        await service.sign_in("nobody@example.com", PASSWORD)
    assert str(wrong.value) == str(unknown.value) == "wrong email or password"


async def test_the_limit_per_email_and_per_ip_then_the_window_passes(parts: Parts) -> None:
    service = parts.service(max_failures_per_email=3, max_failures_per_ip=5)
    await service.sign_up("alice@example.com", PASSWORD)
    for _ in range(3):
        with pytest.raises(SignInFailed):
            await service.sign_in("alice@example.com", "wrong password", client_ip="10.0.0.1")
        parts.clock.advance(timedelta(minutes=1))
    with pytest.raises(RateLimited) as limited:  # even the right password is not tried
        await service.sign_in("alice@example.com", PASSWORD, client_ip="10.0.0.2")
    assert limited.value.retry_after == 12 * 60  # the first failure leaves in 12 minutes
    for email in ("b@example.com", "c@example.com"):  # the IP's 4th and 5th failures
        with pytest.raises(SignInFailed):
            await service.sign_in(email, "wrong password", client_ip="10.0.0.1")
    with pytest.raises(RateLimited):
        await service.sign_in("d@example.com", "wrong password", client_ip="10.0.0.1")
    parts.clock.advance(timedelta(minutes=13))
    signed = await service.sign_in("alice@example.com", PASSWORD, client_ip="10.0.0.2")
    assert signed.account.email == "alice@example.com"


async def test_sign_in_rehashes_a_hash_made_with_old_parameters(parts: Parts) -> None:
    old = parts.service()
    made = await old.sign_up("alice@example.com", PASSWORD)
    assert "m=8192,t=1" in made.account.password_hash
    stronger = AccountService(
        parts.store,
        Argon2PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1),
        parts.clock,
    )
    await stronger.sign_in("alice@example.com", PASSWORD)
    stored = await parts.store.account(made.account.user_id)
    assert stored is not None and "m=16384,t=2" in stored.password_hash
    await stronger.sign_in("alice@example.com", PASSWORD)  # and it still verifies


async def test_sessions_expire_idle_and_at_their_maximum_age(parts: Parts) -> None:
    service = parts.service(session_idle=timedelta(hours=1), session_max_age=timedelta(hours=3))
    signed = await service.sign_up("alice@example.com", PASSWORD)
    for _ in range(3):  # used every 50 minutes: alive until the maximum age
        parts.clock.advance(timedelta(minutes=50))
        assert await service.authenticate(signed.token) is not None
    parts.clock.advance(timedelta(minutes=29))  # 179 minutes: still within 3 hours
    assert await service.authenticate(signed.token) is not None
    parts.clock.advance(timedelta(minutes=2))  # 181 minutes
    assert await service.authenticate(signed.token) is None
    idle = await service.sign_in("alice@example.com", PASSWORD)
    parts.clock.advance(timedelta(minutes=61))
    assert await service.authenticate(idle.token) is None


async def test_change_password_ends_the_other_sessions(parts: Parts) -> None:
    service = parts.service()
    here = await service.sign_up("alice@example.com", PASSWORD)
    there = await service.sign_in("alice@example.com", PASSWORD)
    with pytest.raises(AccountRuleError) as wrong:
        await service.change_password(here.account.user_id, "not it", "another long one")
    assert wrong.value.field == "current_password"
    with pytest.raises(AccountRuleError) as weak:
        await service.change_password(here.account.user_id, PASSWORD, "short")
    assert weak.value.field == "new_password"
    ended = await service.change_password(
        here.account.user_id, PASSWORD, "another long one", keep_session=here.session.id
    )
    assert ended == 1
    assert await service.authenticate(here.token) is not None
    assert await service.authenticate(there.token) is None
    with pytest.raises(SignInFailed):
        await service.sign_in("alice@example.com", PASSWORD)
    await service.sign_in("alice@example.com", "another long one")


async def test_disabled_accounts_cannot_sign_in_and_lose_their_sessions(parts: Parts) -> None:
    service = parts.service()
    signed = await service.sign_up("alice@example.com", PASSWORD)
    await service.set_disabled("Alice@example.com")
    assert await service.authenticate(signed.token) is None
    with pytest.raises(AccountDisabled):
        await service.sign_in("alice@example.com", PASSWORD)
    with pytest.raises(SignInFailed):  # a wrong password says no more than for anyone
        await service.sign_in("alice@example.com", "wrong password")
    await service.set_disabled("alice@example.com", False)
    await service.sign_in("alice@example.com", PASSWORD)


async def test_signup_modes_and_invites(parts: Parts) -> None:
    with pytest.raises(SignupRefused):
        await parts.service(signup="closed").sign_up("a@example.com", PASSWORD)
    invited = parts.service(signup="invite")
    with pytest.raises(AccountRuleError) as missing:
        await invited.sign_up("a@example.com", PASSWORD)
    assert missing.value.field == "invite"
    code = await invited.create_invite(timedelta(hours=1))
    await invited.sign_up("a@example.com", PASSWORD, invite=code)
    with pytest.raises(AccountRuleError, match="unknown, used or expired"):
        await invited.sign_up("b@example.com", PASSWORD, invite=code)
    late = await invited.create_invite(timedelta(hours=1))
    parts.clock.advance(timedelta(hours=2))
    with pytest.raises(AccountRuleError, match="unknown, used or expired"):
        await invited.sign_up("b@example.com", PASSWORD, invite=late)
    # operators create accounts whatever the mode, with an existing owner id if asked
    admin = await parts.service(signup="closed").create_user(
        "root@example.com", PASSWORD, admin=True, user_id="alice"
    )
    assert admin.is_admin and admin.user_id == "alice"
    with pytest.raises(AccountRuleError) as bad_id:
        await invited.create_user("x@example.com", PASSWORD, user_id="has space")
    assert bad_id.value.field == "user_id"
    with pytest.raises(AccountExists, match="user id alice"):
        await invited.create_user("y@example.com", PASSWORD, user_id="alice")
