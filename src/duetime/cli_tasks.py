"""`duetime tasks`: a person's tasks from a terminal, over the task API (`/api/*`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote
from zoneinfo import ZoneInfo

import click
import httpx

from duetime.cli_when import When, parse_reminder, parse_span, parse_when
from duetime.timefmt import format_rfc3339, parse_rfc3339

Body = dict[str, Any]
_ID_LENGTH = 32  # task ids are 32 hex characters; fewer is a prefix to look up


@dataclass
class Api:
    """The task API as one user, and the zone that user's times are read and shown in."""

    client: httpx.Client
    tz: str | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _zone: tuple[str, bool] | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            _fail(f"cannot reach duetime at {self.client.base_url}: {exc}")
        if response.status_code == 401:
            _fail(f"duetime refused the token: {_detail(response)}")
        if response.is_error:
            _fail(_detail(response))
        return None if response.status_code == 204 else response.json()

    def zone(self) -> tuple[str, bool]:
        """(zone, whether it is the user's own from `PUT /api/me`): --tz, else the user's,
        else this machine's."""
        if self._zone is None:
            if self.tz:
                self._zone = (self.tz, False)
            elif users := self.call("GET", "/api/me").get("timezone"):
                self._zone = (users, True)
            else:
                self._zone = (_machine_zone(), False)
        return self._zone

    def when(self, text: str, hint: str) -> When:
        try:
            return parse_when(text, self.zone()[0], self.now)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from None

    def task_id(self, given: str) -> str:
        """A task id, or the one task whose id starts with `given` (as `git` takes a prefix)."""
        if len(given) >= _ID_LENGTH:
            return given
        found = [t["id"] for t in self.tasks({}) if t["id"].startswith(given)]
        if len(found) == 1:
            return str(found[0])
        if not found:
            _fail(f"no task id starts with {given!r}")
        _fail(f"{given!r} is the start of {len(found)} task ids: {', '.join(found[:5])}…")

    def tasks(self, params: dict[str, Any], limit: int | None = None) -> Iterator[Body]:
        cursor = None
        seen = 0
        while True:
            page_size = 500 if limit is None else min(500, limit - seen)
            query = {**params, "limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = self.call("GET", "/api/tasks", params=query)
            for task in page["tasks"]:
                yield task
                seen += 1
            cursor = page["next_cursor"]
            if not cursor or (limit is not None and seen >= limit):
                return


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail) if detail else f"HTTP {response.status_code}"


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _machine_zone() -> str:
    try:
        import tzlocal

        return tzlocal.get_localzone_name() or "UTC"
    except Exception:  # an odd /etc/localtime must not stop a command
        return "UTC"


def _token(token: str | None, user: str | None) -> str:
    if token:
        return token
    if not user:
        raise click.UsageError(
            "no token: set DUETIME_TOKEN=$(duetime token NAME) or pass --user NAME "
            "(signs a token with this machine's DUETIME_DATA_DIR, as `duetime token` does)"
        )
    from duetime.auth import check_user_id, issue_token, load_or_create_secret
    from duetime.settings import Settings

    try:
        check_user_id(user)
        secret = load_or_create_secret(Settings())
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    return issue_token(secret, user, ttl=timedelta(minutes=10), now=datetime.now(UTC))


@click.group()
@click.option(
    "--url",
    envvar="DUETIME_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="duetime's base URL (DUETIME_URL).",
)
@click.option("--token", envvar="DUETIME_TOKEN", help="A bearer token (DUETIME_TOKEN).")
@click.option(
    "--user",
    envvar="DUETIME_USER",
    help="Sign a token for this user with the local data dir (DUETIME_USER).",
)
@click.option(
    "--tz",
    help="Read and show times in this IANA zone (default: yours, PUT /api/me, else this "
    "machine's).",
)
@click.pass_context
def tasks(
    ctx: click.Context, url: str, token: str | None, user: str | None, tz: str | None
) -> None:
    """Your tasks on a running duetime: add, list, done, snooze, import."""
    if tz:
        try:
            ZoneInfo(tz)
        except (ValueError, KeyError):
            raise click.BadParameter(
                f"{tz!r} is not an IANA time zone", param_hint="--tz"
            ) from None
    headers = {"authorization": f"Bearer {_token(token, user)}"}
    try:
        ctx.obj = Api(httpx.Client(base_url=url, headers=headers, timeout=60), tz)
    except httpx.InvalidURL as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None


_json = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


@tasks.command("add")
@click.argument("title")
@click.option("--due", help='When it is due: "tomorrow 9:00", "fri 17:00", "in 2h", RFC3339.')
@click.option("--remind", multiple=True,
              help='A reminder: before the due time ("10m", "1h", "1d") or at a time '
              '("tomorrow 8:00"); repeat for several. Default: at the due time.')  # fmt: skip
@click.option("--repeat", help='"daily", "weekdays", "every monday at 9", an RRULE…')
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option("--priority", type=click.Choice(["low", "medium", "high"]))
@click.option("--notes", help="The description.")
@click.option("--urgent", is_flag=True, help="Its reminders ignore your quiet hours.")
@_json
@click.pass_obj
def tasks_add(
    api: Api,
    title: str,
    due: str | None,
    remind: tuple[str, ...],
    repeat: str | None,
    tags: tuple[str, ...],
    priority: str | None,
    notes: str | None,
    urgent: bool,
    as_json: bool,
) -> None:
    """Add a task, e.g. `duetime tasks add "Pay rent" --due "tomorrow 9:00" --remind 10m`."""
    body: Body = {"title": title, "tags": list(tags)}
    if priority:
        body["priority"] = priority
    if notes:
        body["description"] = notes
    when = api.when(due, "--due") if due else None
    if repeat:
        from duetime.cli_import import repeating

        if repeat.lower().startswith("every"):
            try:
                fields, first = repeating(repeat, api.zone()[0], api.now)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--repeat") from None
            body.update(fields)
            when = when or first
        else:
            body["recurrence"] = repeat
    if when is not None:
        body["due_at"] = when.wire()
        zone, users = api.zone()
        if when.local is not None and not users:
            body["timezone"] = zone
    reminders = [_reminder(api, text) for text in remind]
    if urgent:
        reminders = [{**r, "urgent": True} for r in reminders or [{"before": "PT0S"}]]
    if reminders:
        body["reminders"] = reminders
    task = api.call("POST", "/api/tasks", json=body)
    _show(api, task, as_json, verb="added")


def _reminder(api: Api, text: str) -> Body:
    try:
        return parse_reminder(text, api.zone()[0], api.now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--remind") from None


@tasks.command("list")
@click.option("--status", type=click.Choice(["open", "done", "skipped", "all"]), default="open",
              show_default=True)  # fmt: skip
@click.option("--tag", help="Only tasks with this tag.")
@click.option("--search", help="Text in the title or description.")
@click.option("--due-before", help='Only tasks due before this time ("friday").')
@click.option("--due-after", help="Only tasks due after this time.")
@click.option("--sort", type=click.Choice(["due", "created"]), default="due", show_default=True)
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@_json
@click.pass_obj
def tasks_list(
    api: Api,
    status: str,
    tag: str | None,
    search: str | None,
    due_before: str | None,
    due_after: str | None,
    sort: str,
    limit: int,
    as_json: bool,
) -> None:
    """List your tasks, soonest due first."""
    params: Body = {"sort": "due_at" if sort == "due" else "created_at"}
    if status != "all":
        params["status"] = status
    for key, value in (("tag", tag), ("q", search)):
        if value:
            params[key] = value
    for key, value in (("due_before", due_before), ("due_after", due_after)):
        if value:
            params[key] = format_rfc3339(api.when(value, "--" + key.replace("_", "-")).instant)
    found = list(api.tasks(params, limit))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no tasks")
        return
    zone = api.zone()[0]
    click.echo(f"{'ID':<8}  {'DUE (' + zone + ')':<22}  TITLE")
    for task in found:
        click.echo(f"{task['id'][:8]:<8}  {_due(task, zone, api.now):<22}  {_title(task)}")


@tasks.command("show")
@click.argument("task_id")
@_json
@click.pass_obj
def tasks_show(api: Api, task_id: str, as_json: bool) -> None:
    """Show one task and its reminders (an id or the start of one)."""
    _show(api, api.call("GET", f"/api/tasks/{_path(api, task_id)}"), as_json)


@tasks.command("done")
@click.argument("task_id")
@_json
@click.pass_obj
def tasks_done(api: Api, task_id: str, as_json: bool) -> None:
    """Complete a task; on a recurring one the next occurrence is created."""
    task = api.call("POST", f"/api/tasks/{_path(api, task_id)}/complete")
    _show(api, task, as_json, verb="done")


@tasks.command("reopen")
@click.argument("task_id")
@_json
@click.pass_obj
def tasks_reopen(api: Api, task_id: str, as_json: bool) -> None:
    """Open a completed task again."""
    task = api.call("POST", f"/api/tasks/{_path(api, task_id)}/reopen")
    _show(api, task, as_json, verb="reopened")


@tasks.command("delete")
@click.argument("task_id")
@_json
@click.pass_obj
def tasks_delete(api: Api, task_id: str, as_json: bool) -> None:
    """Delete a task; its reminders are cancelled."""
    found = _path(api, task_id)
    api.call("DELETE", f"/api/tasks/{found}")
    click.echo(json.dumps({"id": found, "deleted": True}) if as_json else f"deleted {found[:8]}")


@tasks.command("snooze")
@click.argument("task_id")
@click.argument("until", metavar="FOR_OR_UNTIL")
@click.option("--urgent", is_flag=True, help="This reminder ignores your quiet hours.")
@_json
@click.pass_obj
def tasks_snooze(api: Api, task_id: str, until: str, urgent: bool, as_json: bool) -> None:
    """Remind me again: `snooze ID 10m`, `snooze ID "tomorrow 9:00"`."""
    try:
        body: Body = {"for": parse_span(until)}
    except ValueError:
        body = {"until": format_rfc3339(api.when(until, "FOR_OR_UNTIL").instant)}
    if urgent:
        body["urgent"] = True
    reminder = api.call("POST", f"/api/tasks/{_path(api, task_id)}/snooze", json=body)
    if as_json:
        click.echo(json.dumps(reminder, indent=2))
        return
    zone = api.zone()[0]
    click.echo(f"snoozed until {_local(reminder['fire_at'], zone, api.now)} ({zone})")


@tasks.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--chunk", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Tasks per batch request.")  # fmt: skip
@click.option("--skip", type=click.IntRange(0), default=0,
              help="Leave out the first N tasks (to resume an import that stopped).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Read the file and print what would be sent.")
@_json
@click.pass_obj
def tasks_import(api: Api, file: Path, chunk: int, skip: int, dry_run: bool, as_json: bool) -> None:
    """Import tasks from a Todoist CSV export, a CSV with the API's field names, or JSON,
    through the batch API."""
    from duetime.cli_import import Reader

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from None
    zone, users = api.zone()
    parsed = Reader(zone, api.now, users).read(text)
    if parsed.problems:
        shown = parsed.problems[:20]
        more = len(parsed.problems) - len(shown)
        _fail(
            f"{file}: nothing was imported; {_rows(len(parsed.problems))} cannot be read:\n  "
            + "\n  ".join(shown)
            + (f"\n  … and {more} more" if more else "")
        )
    todo = parsed.tasks[skip:]
    if dry_run:
        click.echo(json.dumps({"tasks": [body for _, body in todo]}, indent=2))
        return
    imported = scheduled = 0
    with click.progressbar(length=len(todo), label="importing", file=sys.stderr) as bar:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            answer = _send(api, part, done=skip + imported, total=skip + len(todo))
            imported += len(part)
            scheduled += answer["scheduled_reminders"]
            bar.update(len(part))
    left_out = dict(parsed.left_out)
    if as_json:
        summary = {"imported": imported, "scheduled_reminders": scheduled, "left_out": left_out}
        click.echo(json.dumps(summary))
        return
    extra = "".join(f"; left out {_rows(n, kind)}" for kind, n in left_out.items())
    click.echo(f"imported {imported} tasks ({scheduled} reminders scheduled){extra}")


def _rows(n: int, kind: str = "") -> str:
    return f"{n} {kind} row".replace("  ", " ") + ("" if n == 1 else "s")


def _send(api: Api, part: list[tuple[str, Body]], *, done: int, total: int) -> Body:
    """One batch; a refusal names the file's row and says how to resume."""
    try:
        response = api.client.post("/api/tasks/batch", json={"tasks": [b for _, b in part]})
    except httpx.HTTPError as exc:
        _stop(f"cannot reach duetime at {api.client.base_url}: {exc}", done, total)
    if response.is_error:
        detail = _detail(response)
        if detail.startswith("tasks["):
            index, _, rest = detail[len("tasks[") :].partition("]")
            if index.isdigit() and int(index) < len(part):
                detail = f"{part[int(index)][0]}: {rest.lstrip(':. ') or detail}"
        _stop(detail, done, total)
    answer: Body = response.json()
    return answer


def _stop(message: str, done: int, total: int) -> NoReturn:
    resume = f"; to import the rest, run it again with --skip {done}" if done else ""
    _fail(f"{message}\n{done} of {total} tasks were imported before this{resume}")


# -- showing tasks -------------------------------------------------------------------------


def _path(api: Api, given: str) -> str:
    return quote(api.task_id(given), safe="")


def _show(api: Api, task: Body, as_json: bool, verb: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(task, indent=2))
        return
    zone = api.zone()[0]
    head = f"{verb} " if verb else ""
    click.echo(f"{head}{task['id'][:8]}  {_title(task)}")
    click.echo(f"  status   {task['status']}")
    if task.get("due_at"):
        click.echo(f"  due      {_due(task, zone, api.now)} ({zone})")
    for reminder in task.get("reminders", []):
        when = _local(reminder["fire_at"], zone, api.now)
        kind = "snooze" if reminder.get("snooze") else "remind"
        click.echo(f"  {kind:<8} {when}  {reminder['state']}")
    if task.get("series_id"):
        click.echo(f"  repeats  series {task['series_id'][:8]}")


def _title(task: Body) -> str:
    tags = "".join(f" #{tag}" for tag in task.get("tags", []))
    mark = {"done": "✓ ", "skipped": "↷ "}.get(task["status"], "")
    return f"{mark}{task['title']}{tags}"


def _due(task: Body, zone: str, now: datetime) -> str:
    if not task.get("due_at"):
        return "-"
    shown = _local(task["due_at"], zone, now)
    overdue = task["status"] == "open" and parse_rfc3339(task["due_at"]) < now
    return f"{shown} overdue" if overdue else shown


def _local(instant: str, zone: str, now: datetime) -> str:
    """`today 09:00`, `tomorrow 09:00`, `Fri 04 Dec 09:00`, `04 Jan 2028 09:00`."""
    tz = ZoneInfo(zone)
    local = parse_rfc3339(instant).astimezone(tz)
    days = (local.date() - now.astimezone(tz).date()).days
    clock = local.strftime("%H:%M")
    if days == 0:
        return f"today {clock}"
    if days == 1:
        return f"tomorrow {clock}"
    if days == -1:
        return f"yesterday {clock}"
    if abs(days) < 180:
        return local.strftime("%a %d %b %H:%M")
    return local.strftime("%d %b %Y %H:%M")
