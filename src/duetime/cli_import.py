"""Files `duetime tasks import` reads, turned into the task API's batch bodies.

Three formats, told apart by their content:
- a Todoist CSV export (columns `TYPE`, `CONTENT`, `DATE`…): `task` rows become tasks,
  `@labels` in the content become tags, a `note` row is added to the description of the
  task above it, `section` rows are counted and left out; `PRIORITY` 1 (Todoist's p1) is
  `high`, 2 and 3 `medium`, 4 `low`; `DATE` is read as dateparser reads it, in the row's
  `DATE_LANG` and `TIMEZONE`, and a recurring date ("every monday at 9") becomes a rule;
- a CSV with the task API's field names as its header (`title` required; `due` a time as
  a person types it, or `due_at`; `tags` and `reminders` separated by commas);
- JSON: a list of task objects as `POST /api/tasks/batch` takes them, or `{"tasks": [...]}`,
  or what `duetime tasks list --json` printed (its read-only fields are dropped).
Nothing is sent unless every row reads; the problems name their line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from duetime.cli_when import MORNING, When, parse_reminder, parse_when

Body = dict[str, Any]

_TODOIST = {"TYPE", "CONTENT"}
_FIELDS = {
    "title", "description", "notes", "priority", "tags", "due", "due_at", "timezone",
    "reminders", "recurrence", "repeat_after", "status",
}  # fmt: skip
_READ_ONLY = {
    "id", "version", "created_at", "updated_at", "completed_at", "local_due_at",
    "follows_user_timezone", "series_id", "occurrence",
}  # fmt: skip
_LABEL = re.compile(r"(?:^|\s)@([\w\-./]+)")


@dataclass
class Parsed:
    tasks: list[tuple[str, Body]] = field(default_factory=list)  # (where in the file, body)
    problems: list[str] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)


class Reader:
    """Reads one file's rows with the caller's zone and clock."""

    def __init__(self, zone: str, now: datetime, zone_is_users: bool) -> None:
        self.zone = zone
        self.now = now
        self.zone_is_users = zone_is_users  # a wall time then needs no `timezone` field

    def read(self, text: str) -> Parsed:
        stripped = text.lstrip("\ufeff").lstrip()
        if stripped.startswith(("[", "{")):
            return self._json(stripped)
        rows = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = {name.strip() for name in rows.fieldnames or ()}
        if _TODOIST <= header:
            return self._todoist(rows)
        if "title" in header:
            return self._plain_csv(rows, header)
        return Parsed(
            problems=[
                "line 1: not a file duetime reads: a Todoist CSV export (TYPE, CONTENT, "
                "DATE…), a CSV whose header has `title`, or JSON"
            ]
        )

    # -- the three formats -----------------------------------------------------------------
    def _json(self, text: str) -> Parsed:
        out = Parsed()
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            out.problems.append(f"not JSON: {exc}")
            return out
        items = loaded.get("tasks") if isinstance(loaded, dict) else loaded
        if not isinstance(items, list):
            out.problems.append('JSON: expected a list of tasks, or {"tasks": [...]}')
            return out
        for index, item in enumerate(items):
            where = f"tasks[{index}]"
            if not isinstance(item, dict):
                out.problems.append(f"{where}: expected a task object")
                continue
            out.tasks.append((where, self._from_api(item)))
        return out

    def _plain_csv(self, rows: csv.DictReader[str], header: set[str]) -> Parsed:
        out = Parsed()
        unknown = sorted(header - _FIELDS - {""})
        if unknown:
            out.problems.append(
                f"line 1: unknown columns {', '.join(unknown)}; duetime reads "
                + ", ".join(sorted(_FIELDS))
            )
            return out
        for row in rows:
            where = f"line {rows.line_num}"
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if not any(cells.values()):
                continue
            self._guard(out, where, self._from_plain, cells)
        return out

    def _todoist(self, rows: csv.DictReader[str]) -> Parsed:
        out = Parsed()
        for row in rows:
            where = f"line {rows.line_num}"
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            kind = cells.get("TYPE", "")
            if kind == "task":
                self._guard(out, where, self._from_todoist, cells)
            elif kind == "note" and cells.get("CONTENT"):
                if out.tasks:
                    body = out.tasks[-1][1]
                    body["description"] = "\n\n".join(
                        part for part in (body.get("description", ""), cells["CONTENT"]) if part
                    )
                else:
                    out.problems.append(f"{where}: a note with no task above it")
            elif kind or any(cells.values()):
                out.left_out[kind or "row without TYPE"] += 1
        return out

    def _guard(
        self, out: Parsed, where: str, make: Callable[[dict[str, str]], Body], cells: dict[str, str]
    ) -> None:
        try:
            out.tasks.append((where, make(cells)))
        except ValueError as exc:
            out.problems.append(f"{where}: {exc}")

    # -- one row -----------------------------------------------------------------------------
    def _from_api(self, item: Body) -> Body:
        body = {k: v for k, v in item.items() if k not in _READ_ONLY}
        local = item.get("local_due_at")
        if isinstance(local, str) and (item.get("timezone") or item.get("follows_user_timezone")):
            body["due_at"] = local  # keep a wall time a wall time (it follows DST)
        if isinstance(body.get("reminders"), list):
            body["reminders"] = [
                {k: v for k, v in r.items() if k in ("before", "at", "urgent")}
                if isinstance(r, dict)
                else r
                for r in body["reminders"]
                if not (isinstance(r, dict) and r.get("snooze"))
            ]
        return body

    def _from_plain(self, cells: dict[str, str]) -> Body:
        body: Body = {"title": cells.get("title", "")}
        description = cells.get("description") or cells.get("notes")
        if description:
            body["description"] = description
        for name in ("priority", "recurrence", "repeat_after", "status"):
            if cells.get(name):
                body[name] = cells[name].lower() if name in ("priority", "status") else cells[name]
        if cells.get("tags"):
            body["tags"] = _split(cells["tags"])
        zone = cells.get("timezone") or None
        if zone:
            body["timezone"] = zone
        due = cells.get("due") or cells.get("due_at")
        if due:
            self._set_due(body, self._when(due, zone), zone)
        if cells.get("reminders"):
            body["reminders"] = [
                parse_reminder(text, zone or self.zone, self.now)
                for text in _split(cells["reminders"])
            ]
        return body

    def _from_todoist(self, cells: dict[str, str]) -> Body:
        content = cells.get("CONTENT", "")
        tags = _LABEL.findall(content)
        title = _LABEL.sub(" ", content).strip() if tags else content
        body: Body = {"title": " ".join(title.split()) or content}
        if tags:
            body["tags"] = tags
        if cells.get("DESCRIPTION"):
            body["description"] = cells["DESCRIPTION"]
        body["priority"] = _todoist_priority(cells.get("PRIORITY", ""))
        zone = cells.get("TIMEZONE") or None
        date = cells.get("DATE", "")
        if date:
            languages = [cells["DATE_LANG"]] if cells.get("DATE_LANG") else None
            if date.lower().startswith("every"):
                self._set_repeat(body, date, zone or self.zone)
            else:
                self._set_due(body, self._when(date, zone, languages), zone)
        return body

    # -- times -----------------------------------------------------------------------------
    def _when(self, text: str, zone: str | None, languages: list[str] | None = None) -> When:
        return parse_when(text, zone or self.zone, self.now, languages=languages)

    def _set_due(self, body: Body, when: When, zone: str | None) -> None:
        body["due_at"] = when.wire()
        if when.local is not None and zone is None and not self.zone_is_users:
            body["timezone"] = self.zone
        elif zone:
            body["timezone"] = zone

    def _set_repeat(self, body: Body, text: str, zone: str | None) -> None:
        fields, first = repeating(text, zone or self.zone, self.now)
        body.update(fields)
        self._set_due(body, first, zone)


# -- Todoist's recurring dates ----------------------------------------------------------------

_DAYS = {
    "mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA", "sun": "SU",
}  # fmt: skip
_FREQ = {"day": "DAILY", "week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY"}
_PRESETS = {
    "day": "daily", "daily": "daily", "weekday": "weekdays", "workday": "weekdays",
    "week": "weekly", "weekly": "weekly", "month": "monthly", "monthly": "monthly",
    "year": "yearly", "yearly": "yearly",
}  # fmt: skip
_RULES = {
    "daily": "FREQ=DAILY",
    "weekdays": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    "weekly": "FREQ=WEEKLY",
    "monthly": "FREQ=MONTHLY",
    "yearly": "FREQ=YEARLY",
}
_EVERY = re.compile(r"every(?P<after>!)?\s+(?P<what>.+?)(?:\s+(?:at|@)\s+(?P<at>.+))?", re.I)
_COUNT = re.compile(r"(?P<n>\d+|other)\s+(?P<unit>hour|day|week|month|year)s?")
_AFTER = {"hour": "PT{}H", "day": "P{}D", "week": "P{}W"}
_UNDERSTOOD = (
    "every day / weekday / week / month / year, every 3 days / weeks / months, every other "
    "week, every monday, wed; every! 3 days (counted from completion); each may end 'at 9am'"
)


def repeating(text: str, zone: str, now: datetime) -> tuple[Body, When]:
    """A Todoist recurring date: the task fields it sets and the first due time."""
    match = _EVERY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"cannot read the recurring date {text!r}; duetime reads {_UNDERSTOOD}")
    what = match["what"].lower().strip()
    at = MORNING
    if match["at"]:
        at = parse_when(match["at"], zone, now).instant.astimezone(ZoneInfo(zone)).time()
    counted = _COUNT.fullmatch(what)
    n = 0 if counted is None else 2 if counted["n"] == "other" else int(counted["n"])
    start = datetime.combine(now.astimezone(ZoneInfo(zone)).date(), at)
    if not _ahead(start, zone, now):
        start += timedelta(days=1)  # the series starts at its next time of day
    if match["after"]:
        if counted is None or counted["unit"] not in _AFTER:
            raise ValueError(f"{text!r}: every! counts hours, days or weeks: 'every! 3 days'")
        if counted["unit"] == "hour":
            first = now.astimezone(ZoneInfo(zone)).replace(tzinfo=None, microsecond=0)
            first += timedelta(hours=n)
        else:
            first = start
        return {"repeat_after": _AFTER[counted["unit"]].format(n)}, When(
            first.replace(tzinfo=ZoneInfo(zone)), local=first, zone=zone
        )
    if what in _PRESETS:
        shown = _PRESETS[what]
        rule = _RULES[shown]
    elif counted is not None and counted["unit"] in _FREQ:
        rule = shown = f"FREQ={_FREQ[counted['unit']]};INTERVAL={n}"
    else:
        days = [_DAYS.get(part[:3]) for part in re.split(r"[\s,]+", what) if part != "and"]
        if not days or not all(days):
            raise ValueError(
                f"cannot read the recurring date {text!r}; duetime reads {_UNDERSTOOD}"
            )
        rule = shown = "FREQ=WEEKLY;BYDAY=" + ",".join(dict.fromkeys(d for d in days if d))
    first = next(d for d in rrulestr(rule, dtstart=start) if _ahead(d, zone, now))
    return {"recurrence": shown}, When(first.replace(tzinfo=ZoneInfo(zone)), local=first, zone=zone)


def _ahead(local: datetime, zone: str, now: datetime) -> bool:
    return local.replace(tzinfo=ZoneInfo(zone)) > now


def _todoist_priority(text: str) -> str:
    return {"1": "high", "2": "medium", "3": "medium", "4": "low"}.get(text.strip(), "medium")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
