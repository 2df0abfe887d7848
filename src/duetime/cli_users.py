"""`duetime users`: operators manage browser accounts in the local database (the one the
server's settings name: `DUETIME_DATABASE_URL`, else `duetime.db` in `DUETIME_DATA_DIR`),
migrated first, so these work before the first `duetime serve` too."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from duetime.accounts.model import Account, AccountRuleError
from duetime.accounts.service import AccountExists, AccountNotFound, AccountService
from duetime.settings import Settings

T = TypeVar("T")

_HINTS = {"email": "EMAIL", "password": "password", "user_id": "--user-id", "ttl": "--ttl"}


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise click.ClickException(f"bad configuration: {messages}") from None


def _run(settings: Settings, work: Callable[[AccountService], Awaitable[T]]) -> T:
    """`work` on the accounts of the settings' database, migrated first; one clear line
    for a database that cannot be used, a usage error naming the argument for bad input."""
    from duetime.bootstrap import account_service
    from duetime.clock import SystemClock
    from duetime.db.engine import create_engine, migrate, safe_url

    url = settings.resolved_database_url()

    async def run() -> T:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot use the database {url}: {exc}") from None
        try:
            try:
                await migrate(engine)
            except Exception as exc:
                first = str(exc).split("\n(Background on this error", 1)[0].strip()
                raise click.ClickException(
                    f"cannot use the database {safe_url(url)}: {type(exc).__name__}: {first}"
                ) from None
            return await work(account_service(settings, engine, SystemClock()))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except AccountRuleError as exc:
        raise click.BadParameter(exc.message, param_hint=_HINTS.get(exc.field, exc.field)) from None
    except (AccountExists, AccountNotFound) as exc:
        raise click.ClickException(str(exc)) from None


def _describe(account: Account) -> dict[str, Any]:
    from duetime.timefmt import format_rfc3339, from_micros

    return {
        "email": account.email,
        "user_id": account.user_id,
        "is_admin": account.is_admin,
        "disabled": account.disabled,
        "created_at": format_rfc3339(from_micros(account.created_us)),
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask for the password: pass --password-stdin")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@click.group()
def users() -> None:
    """Browser accounts (email and password) in the local database, for operators."""


@users.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="An administrator (the operator views).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option(
    "--user-id",
    help="Own the tasks of this existing user id (a bearer token's subject); default: new.",
)
def users_create(email: str, admin: bool, password_stdin: bool, user_id: str | None) -> None:
    """Create an account for EMAIL, whatever DUETIME_SIGNUP says."""
    settings = _settings()
    password = _read_password(password_stdin)
    account = _run(settings, lambda s: s.create_user(email, password, admin=admin, user_id=user_id))
    role = " (admin)" if account.is_admin else ""
    click.echo(f"created {account.email}{role}, user id {account.user_id}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of the accounts.")
def users_list(as_json: bool) -> None:
    """Every account, oldest first."""
    found = [_describe(a) for a in _run(_settings(), lambda s: s.list_users())]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no accounts")
        return
    width = max(len(a["email"]) for a in found)
    click.echo(f"{'EMAIL':<{width}}  {'USER ID':<33}  ROLE   STATE     CREATED")
    for a in found:
        role = "admin" if a["is_admin"] else "user"
        state = "disabled" if a["disabled"] else "active"
        click.echo(
            f"{a['email']:<{width}}  {a['user_id']:<33}  {role:<5}  {state:<8}  {a['created_at']}"
        )


@users.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Disable the account of EMAIL: it cannot sign in, and its sessions end now."""
    account = _run(_settings(), lambda s: s.set_disabled(email, True))
    click.echo(f"disabled {account.email}")


@users.command("enable")
@click.argument("email")
def users_enable(email: str) -> None:
    """Let a disabled account of EMAIL sign in again."""
    account = _run(_settings(), lambda s: s.set_disabled(email, False))
    click.echo(f"enabled {account.email}")


@users.command("invite")
@click.option(
    "--ttl", default="P7D", show_default=True, help='How long the code works: "48h", "P7D".'
)
def users_invite(ttl: str) -> None:
    """Print a single-use sign-up code (DUETIME_SIGNUP=invite)."""
    from duetime.timefmt import parse_duration

    try:
        lifetime = parse_duration(ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    if lifetime <= timedelta(0):
        raise click.BadParameter(f"{ttl!r}: must be positive", param_hint="--ttl")
    settings = _settings()
    if settings.signup_mode != "invite":
        raise click.ClickException(
            f"sign-up is {settings.signup_mode} on this server, so an invite would not be asked "
            "for: set DUETIME_SIGNUP=invite"
        )
    click.echo(_run(settings, lambda s: s.create_invite(lifetime)))
