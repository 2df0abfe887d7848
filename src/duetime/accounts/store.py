"""Accounts, sessions, failed sign-ins and invites in the app's SQL database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from duetime.accounts.model import Account, Invite, Session
from duetime.accounts.port import EmailTaken, FailureCount, InviteInvalid, UserIdTaken
from duetime.db.tables import account_invites as i_table
from duetime.db.tables import accounts as a_table
from duetime.db.tables import sessions as s_table
from duetime.db.tables import signin_failures as f_table


class SqlAccountStore:
    """`AccountStore` (duetime.accounts.port) on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # -- accounts ------------------------------------------------------------------------
    async def create_account(
        self, account: Account, *, invite_hash: str | None = None, now_us: int
    ) -> None:
        try:
            async with self._engine.begin() as conn:
                await self._check_free(conn, account)
                if invite_hash is not None:
                    used = await conn.execute(
                        update(i_table)
                        .where(
                            i_table.c.code_hash == invite_hash,
                            i_table.c.used_us.is_(None),
                            i_table.c.expires_us > now_us,
                        )
                        .values(used_us=now_us, used_by=account.user_id)
                    )
                    if used.rowcount != 1:
                        raise InviteInvalid
                await conn.execute(insert(a_table).values(**_account_values(account)))
        except IntegrityError:
            # a race with another insert of the same email or user id: say which
            async with self._engine.connect() as conn:
                await self._check_free(conn, account)
            raise EmailTaken from None

    async def _check_free(self, conn: AsyncConnection, account: Account) -> None:
        found = await conn.execute(
            select(a_table.c.user_id, a_table.c.email).where(
                (a_table.c.email == account.email) | (a_table.c.user_id == account.user_id)
            )
        )
        for user_id, email in found:
            if email == account.email:
                raise EmailTaken
            if user_id == account.user_id:
                raise UserIdTaken

    async def account_by_email(self, email: str) -> Account | None:
        return await self._one_account(a_table.c.email == email)

    async def account(self, user_id: str) -> Account | None:
        return await self._one_account(a_table.c.user_id == user_id)

    async def _one_account(self, where: Any) -> Account | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(a_table).where(where))).first()
        return None if row is None else _account(row)

    async def accounts(self) -> Sequence[Account]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(a_table).order_by(a_table.c.created_us, a_table.c.user_id)
            )
            return [_account(row) for row in rows]

    async def set_password(self, user_id: str, password_hash: str, now_us: int) -> bool:
        async with self._engine.begin() as conn:
            done = await conn.execute(
                update(a_table)
                .where(a_table.c.user_id == user_id)
                .values(password_hash=password_hash, updated_us=now_us)
            )
            return done.rowcount == 1

    async def set_disabled(self, user_id: str, disabled: bool, now_us: int) -> bool:
        async with self._engine.begin() as conn:
            done = await conn.execute(
                update(a_table)
                .where(a_table.c.user_id == user_id)
                .values(disabled=disabled, updated_us=now_us)
            )
            if disabled:
                await conn.execute(delete(s_table).where(s_table.c.user_id == user_id))
            return done.rowcount == 1

    # -- sessions ------------------------------------------------------------------------
    async def add_session(self, session: Session, *, replacing: str | None = None) -> None:
        async with self._engine.begin() as conn:
            if replacing is not None:
                await conn.execute(delete(s_table).where(s_table.c.id == replacing))
            await conn.execute(
                delete(s_table).where(
                    s_table.c.user_id == session.user_id,
                    s_table.c.expires_us <= session.created_us,
                )
            )
            await conn.execute(
                insert(s_table).values(
                    id=session.id,
                    user_id=session.user_id,
                    csrf_secret=session.csrf_secret,
                    created_us=session.created_us,
                    last_seen_us=session.last_seen_us,
                    expires_us=session.expires_us,
                    user_agent=session.user_agent,
                )
            )

    async def session(self, session_id: str) -> tuple[Session, Account] | None:
        query = (
            select(s_table, *[c.label(f"a_{c.name}") for c in a_table.c])
            .join(a_table, a_table.c.user_id == s_table.c.user_id)
            .where(s_table.c.id == session_id)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        m = row._mapping
        session = Session(
            id=m["id"],
            user_id=m["user_id"],
            csrf_secret=m["csrf_secret"],
            created_us=m["created_us"],
            last_seen_us=m["last_seen_us"],
            expires_us=m["expires_us"],
            user_agent=m["user_agent"],
        )
        account = Account(
            user_id=m["a_user_id"],
            email=m["a_email"],
            password_hash=m["a_password_hash"],
            is_admin=bool(m["a_is_admin"]),
            disabled=bool(m["a_disabled"]),
            created_us=m["a_created_us"],
            updated_us=m["a_updated_us"],
        )
        return session, account

    async def touch_session(self, session_id: str, last_seen_us: int, expires_us: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(s_table)
                .where(s_table.c.id == session_id)
                .values(last_seen_us=last_seen_us, expires_us=expires_us)
            )

    async def delete_session(self, session_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(s_table).where(s_table.c.id == session_id))

    async def delete_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        where = [s_table.c.user_id == user_id]
        if keep is not None:
            where.append(s_table.c.id != keep)
        async with self._engine.begin() as conn:
            done = await conn.execute(delete(s_table).where(*where))
            return int(done.rowcount)

    # -- failed sign-ins -----------------------------------------------------------------
    async def record_failure(self, keys: Sequence[str], now_us: int, forget_before_us: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(f_table).where(f_table.c.at_us < forget_before_us))
            await conn.execute(insert(f_table), [{"key": key, "at_us": now_us} for key in keys])

    async def failures(self, keys: Sequence[str], since_us: int) -> dict[str, FailureCount]:
        counts = {key: FailureCount(0, None) for key in keys}
        query = (
            select(f_table.c.key, func.count(), func.min(f_table.c.at_us))
            .where(f_table.c.key.in_(list(keys)), f_table.c.at_us > since_us)
            .group_by(f_table.c.key)
        )
        async with self._engine.connect() as conn:
            for key, count, oldest in await conn.execute(query):
                counts[key] = FailureCount(int(count), int(oldest))
        return counts

    async def clear_failures(self, key: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(f_table).where(f_table.c.key == key))

    # -- invites -------------------------------------------------------------------------
    async def add_invite(self, invite: Invite) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(i_table).values(
                    code_hash=invite.code_hash,
                    created_us=invite.created_us,
                    expires_us=invite.expires_us,
                    used_us=invite.used_us,
                    used_by=invite.used_by,
                )
            )


def _account_values(account: Account) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "email": account.email,
        "password_hash": account.password_hash,
        "is_admin": account.is_admin,
        "disabled": account.disabled,
        "created_us": account.created_us,
        "updated_us": account.updated_us,
    }


def _account(row: Row[Any]) -> Account:
    m = row._mapping
    return Account(
        user_id=m["user_id"],
        email=m["email"],
        password_hash=m["password_hash"],
        is_admin=bool(m["is_admin"]),
        disabled=bool(m["disabled"]),
        created_us=m["created_us"],
        updated_us=m["updated_us"],
    )
