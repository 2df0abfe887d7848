"""The `duetime` command: run the service, and manage jobs over its HTTP API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any, NoReturn
from urllib.parse import quote

import click
import httpx
from pydantic import ValidationError

from duetime.cli_dapr import dapr
from duetime.cli_tasks import tasks
from duetime.cli_users import users
from duetime.settings import Settings


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        messages = "; ".join(_plain(e) for e in exc.errors())
        raise click.ClickException(f"bad configuration: {messages}") from None


def _plain(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


@click.group()
@click.version_option(package_name="duetime")
def main() -> None:
    """duetime: exact-time reminders and scheduled jobs."""


_host = click.option("--host", help="Address to bind (default 127.0.0.1, DUETIME_HOST).")
_port = click.option("--port", type=int, help="Port to bind (default 8000, DUETIME_PORT).")


@main.command()
@_host
@_port
def serve(host: str | None, port: int | None) -> None:
    """Run duetime: the HTTP API and the jobs engine (DUETIME_ROLE: all, the default, also
    runs the notifier; api runs without it)."""
    _run(_settings(host=host, port=port))


@main.command()
@_host
@_port
def worker(host: str | None, port: int | None) -> None:
    """Run the notifier alone (DUETIME_ROLE=worker): it receives reminder.due through its
    Dapr sidecar's pub/sub and sends webhooks and email. Needs DUETIME_EVENT_PUBLISHER=dapr
    and the API's database."""
    _run(_settings(host=host, port=port, role="worker"))


def _run(settings: Settings) -> None:
    import logging

    import uvicorn

    from duetime.app import create_app
    from duetime.db.engine import prepare, safe_url
    from duetime.logs import configure as configure_logging
    from duetime.server import StoppableServer

    redactor = configure_logging(settings)
    try:
        app = create_app(settings, serve_grpc=True)
    except OSError as exc:
        raise click.ClickException(_storage_problem(settings, exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    redactor.add(app.state.runtime.jwt_secret)
    url = settings.resolved_database_url()
    try:
        _check_grpc_port(settings)
        try:
            asyncio.run(prepare(url))  # fail here with one clear line, not in the start-up
        except Exception as exc:
            raise click.ClickException(
                f"cannot use the database {safe_url(url)}: {_first_line(exc)}"
            ) from None
    except click.ClickException:
        # close what the app opened, so no driver thread outlives the error line
        asyncio.run(app.state.runtime.close())
        raise
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers propagate to duetime's handler (logs.py)
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,  # a backstop: requests still open then are cancelled
    )
    hub = app.state.runtime.hub
    # with JSON logs, the banner is a log line too: every line of output is JSON
    announce = logging.getLogger("duetime").info if settings.log_format == "json" else None
    StoppableServer(
        config, on_exit=hub.close_all, banner=_banner(settings), announce=announce
    ).run()


def _banner(settings: Settings) -> str:
    """What a newcomer needs once the server is up: where it listens, how to get a token."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{settings.port}"
    if not settings.runs_api:
        return f"duetime worker ready on {url}"
    return (
        f"duetime ready on {url} (API docs: {url}/docs)\n"
        f"  a token for the task API: {_command()} token NAME  (same DUETIME_DATA_DIR:"
        f" {settings.data_dir})"
    )


def _command() -> str:
    """How this command was spelled, as a user would type it again from here."""
    argv0 = sys.argv[0]
    if os.path.basename(argv0) == "duetime":
        if os.sep not in argv0:
            return "duetime"
        relative = os.path.relpath(argv0)
        return relative if relative.startswith(".") else f"./{relative}"
    return "python -m duetime"


def _storage_problem(settings: Settings, exc: OSError) -> str:
    """Name the data dir only when the file that failed is in it (a resources path, say, is not)."""
    where = str(exc.filename or settings.data_dir)
    why = exc.strerror or str(exc)
    if where.startswith(str(settings.data_dir)):
        return f"cannot use the data dir {settings.data_dir} (DUETIME_DATA_DIR): {where}: {why}"
    return f"cannot start: {where}: {why}"


def _first_line(exc: Exception) -> str:
    """`Type: message`, without SQLAlchemy's "(Background on this error at: …)" line."""
    text = str(exc).split("\n(Background on this error", 1)[0].strip()
    return f"{type(exc).__name__}: {text}"


def _check_grpc_port(settings: Settings) -> None:
    """Fail with one line, before anything starts, when the Dapr gRPC API's port or the
    metrics port is taken."""
    if settings.grpc_port and settings.runs_api:
        _check_port(
            settings.host,
            settings.grpc_port,
            "the Dapr gRPC API",
            "DUETIME_GRPC_PORT: set it to a free port, or 0 to turn it off",
        )
    if settings.metrics_port:
        _check_port(
            settings.metrics_host,
            settings.metrics_port,
            "metrics",
            "DUETIME_METRICS_PORT: set it to a free port, or unset it",
        )


def _check_port(host: str, port: int, what: str, fix: str) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = (exc.strerror or str(exc)).lower()
            raise click.ClickException(
                f"cannot serve {what} on {host}:{port}: {why} ({fix})"
            ) from None


@main.command()
@click.argument("user")
@click.option(
    "--ttl", default="24h", show_default=True, help='Lifetime: "1h30m", "PT8H", "P30D", "720h".'
)
def token(user: str, ttl: str) -> None:
    """Print a bearer token for USER for the task API (/api/*).

    Signed with DUETIME_JWT_SECRET, or with the secret in the data dir (created on first
    use), the same one `duetime serve` uses."""
    from datetime import UTC, datetime, timedelta

    from duetime.auth import check_user_id, issue_token, load_or_create_secret
    from duetime.timefmt import parse_duration

    now = datetime.now(UTC)
    try:
        lifetime = parse_duration(ttl, anchor=now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from None
    if lifetime <= timedelta(0):
        raise click.BadParameter(f"{ttl!r}: must be positive", param_hint="--ttl")
    try:
        check_user_id(user)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="USER") from None
    settings = _settings()
    try:
        secret = load_or_create_secret(settings)
        signed = issue_token(secret, user, ttl=lifetime, now=now)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(signed)


# -- jobs over HTTP ----------------------------------------------------------------------


@main.group()
@click.option(
    "--url",
    envvar="DUETIME_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="duetime's base URL (DUETIME_URL).",
)
@click.pass_context
def jobs(ctx: click.Context, url: str) -> None:
    """Schedule, inspect and delete jobs on a running duetime (token: DUETIME_API_TOKEN)."""
    headers = {}
    token = os.environ.get("DUETIME_API_TOKEN")
    if token:
        headers["dapr-api-token"] = token
    try:
        ctx.obj = httpx.Client(base_url=url, headers=headers, timeout=30)
    except httpx.InvalidURL as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None


def _call(ctx: click.Context, method: str, path: str, **kwargs: Any) -> httpx.Response:
    client: httpx.Client = ctx.obj
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach duetime at {client.base_url}: {exc}") from None
    if response.is_error:
        try:
            body = response.json()
            message = f"{body.get('errorCode', response.status_code)}: {body.get('message', '')}"
        except ValueError:
            message = f"HTTP {response.status_code}"
        _fail(message)
    return response


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


@jobs.command("list")
@click.option("--prefix", default="", help="Only jobs whose name starts with this.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--after", default="", help="Resume after this name (from a previous `next`).")
@click.pass_context
def jobs_list(ctx: click.Context, prefix: str, limit: int, after: str) -> None:
    """List jobs with their next fire time."""
    params = {"prefix": prefix, "limit": limit, "after": after}
    _print(_call(ctx, "GET", "/v1.0/jobs", params=params).json())


@jobs.command("get")
@click.argument("name")
@click.pass_context
def jobs_get(ctx: click.Context, name: str) -> None:
    """Show one job, as Dapr's GET does."""
    _print(_call(ctx, "GET", f"/v1.0/jobs/{quote(name, safe='')}").json())


@jobs.command("delete")
@click.argument("name")
@click.pass_context
def jobs_delete(ctx: click.Context, name: str) -> None:
    """Delete a job (succeeds if it does not exist, as in Dapr)."""
    _call(ctx, "DELETE", f"/v1.0/jobs/{quote(name, safe='')}")
    _print({"name": name, "deleted": True})


@jobs.command("schedule")
@click.argument("name")
@click.option(
    "--schedule", help='Cron with seconds ("0 30 9 * * MON-FRI"), "@every 10s", "@daily"…'
)
@click.option("--due-time", help='RFC3339 instant or duration from now ("10s", "PT10S").')
@click.option("--repeats", type=int, help="How many times to fire in all.")
@click.option("--ttl", help="When the job expires: RFC3339 instant or duration.")
@click.option("--data", help="Any JSON value, delivered as the trigger body.")
@click.option("--drop", is_flag=True, help="Failure policy: no retries.")
@click.option("--retry-interval", help='Failure policy: constant retries this far apart ("5s").')
@click.option("--max-retries", type=int, help="Failure policy: retries before giving up.")
@click.option("--overwrite", is_flag=True, help="Replace a job of the same name.")
@click.pass_context
def jobs_schedule(
    ctx: click.Context,
    name: str,
    schedule: str | None,
    due_time: str | None,
    repeats: int | None,
    ttl: str | None,
    data: str | None,
    drop: bool,
    retry_interval: str | None,
    max_retries: int | None,
    overwrite: bool,
) -> None:
    """Schedule a job (Dapr's POST /v1.0/jobs/NAME)."""
    body: dict[str, Any] = {"overwrite": overwrite}
    for key, value in (
        ("schedule", schedule),
        ("dueTime", due_time),
        ("repeats", repeats),
        ("ttl", ttl),
    ):
        if value is not None:
            body[key] = value
    if data is not None:
        try:
            body["data"] = json.loads(data)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--data") from None
    if drop:
        body["failurePolicy"] = {"drop": {}}
    elif retry_interval is not None or max_retries is not None:
        constant: dict[str, Any] = {"interval": retry_interval or "1s"}
        if max_retries is not None:
            constant["maxRetries"] = max_retries
        body["failurePolicy"] = {"constant": constant}
    _call(ctx, "POST", f"/v1.0/jobs/{quote(name, safe='')}", json=body)
    _print(_call(ctx, "GET", "/v1.0/jobs", params={"prefix": name, "limit": 1}).json()["jobs"][0])


@jobs.command("dead-letters")
@click.option("--prefix", default="", help="Only dead letters of jobs whose name starts with this.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.pass_context
def jobs_dead_letters(ctx: click.Context, prefix: str, limit: int) -> None:
    """List triggers whose failure policy ran out."""
    _print(_call(ctx, "GET", "/v1.0/deadletters", params={"prefix": prefix, "limit": limit}).json())


@jobs.command("replay")
@click.argument("dead_letter_id")
@click.pass_context
def jobs_replay(ctx: click.Context, dead_letter_id: str) -> None:
    """Deliver a dead letter once, now; it is removed if the delivery succeeds."""
    _call(ctx, "POST", f"/v1.0/deadletters/{quote(dead_letter_id, safe='')}/replay")
    _print({"id": dead_letter_id, "delivered": True})


main.add_command(dapr)
main.add_command(tasks)
main.add_command(users)
