"""`duetime tasks` against a running server: a person's tasks from a terminal."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from duetime.auth import issue_token, load_or_create_secret
from duetime.settings import Settings
from duetime.timefmt import parse_rfc3339
from tests.conftest import free_port
from tests.e2e.conftest import Server


def tasks_cli(
    server: Server, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DUETIME_")}
    environ.update(DUETIME_URL=server.url, DUETIME_DATA_DIR=server._env["DUETIME_DATA_DIR"])
    environ.setdefault("TZ", "America/New_York")
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "duetime", "tasks", *args],
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def api(server: Server, user: str) -> httpx.Client:
    settings = Settings(data_dir=Path(server._env["DUETIME_DATA_DIR"]))
    secret = load_or_create_secret(settings)
    token = issue_token(secret, user, ttl=timedelta(hours=1), now=datetime.now(UTC))
    return httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def all_tasks(client: httpx.Client) -> list[dict]:
    found, cursor = [], None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/tasks", params=params).json()
        found += page["tasks"]
        if not (cursor := page["next_cursor"]):
            return found


def test_add_list_show_and_done_read_times_in_the_right_zone(
    make_server: Callable[..., Server],
) -> None:
    server = make_server().start()
    added = json.loads(
        ok(
            tasks_cli(
                server, "--user", "alice", "add", "Pay rent", "--due", "tomorrow 9:00",
                "--remind", "10m", "--remind", "1d", "--tag", "home", "--priority", "high",
                "--json",
            )
        )
    )  # fmt: skip
    new_york = ZoneInfo("America/New_York")
    tomorrow = (datetime.now(new_york) + timedelta(days=1)).date()
    due = parse_rfc3339(added["due_at"]).astimezone(new_york)
    assert (due.date(), due.hour, due.minute) == (tomorrow, 9, 0)
    assert added["timezone"] == "America/New_York"  # alice has no zone of her own: it is kept
    assert [r["before"] for r in added["reminders"]] == ["PT10M", "P1D"]
    assert added["tags"] == ["home"] and added["priority"] == "high"

    listed = ok(tasks_cli(server, "--user", "alice", "list"))
    assert "DUE (America/New_York)" in listed
    assert f"{added['id'][:8]}  tomorrow 09:00" in listed and "Pay rent #home" in listed
    shown = ok(tasks_cli(server, "--user", "alice", "show", added["id"][:6]))
    assert "remind   tomorrow 08:50  scheduled" in shown

    done = ok(tasks_cli(server, "--user", "alice", "done", added["id"][:6]))
    assert done.startswith(f"done {added['id'][:8]}  ✓ Pay rent")
    assert ok(tasks_cli(server, "--user", "alice", "list")).strip() == "no tasks"
    assert [t["id"] for t in json.loads(ok(tasks_cli(server, "--user", "alice", "list",
            "--status", "done", "--json")))] == [added["id"]]  # fmt: skip
    assert "no tasks" in ok(tasks_cli(server, "--user", "bob", "list", "--status", "all"))

    # with a zone of her own, a wall time follows it (and is shown in it), whatever TZ says
    with api(server, "alice") as client:
        assert client.put("/api/me", json={"timezone": "Asia/Tokyo"}).status_code == 200
    tokyo = json.loads(ok(tasks_cli(server, "--user", "alice", "add", "Call", "--due",
                                    "tomorrow 9:00", "--json")))  # fmt: skip
    assert tokyo["timezone"] is None and tokyo["follows_user_timezone"] is True
    assert tokyo["local_due_at"].endswith("T09:00:00")
    assert "DUE (Asia/Tokyo)" in ok(tasks_cli(server, "--user", "alice", "list"))

    series = json.loads(ok(tasks_cli(server, "--user", "alice", "add", "Standup", "--repeat",
                                     "every weekday at 9:30", "--json")))  # fmt: skip
    assert series["series_id"] and series["local_due_at"].endswith("T09:30:00")
    assert datetime.fromisoformat(series["local_due_at"]).weekday() < 5
    nxt = json.loads(ok(tasks_cli(server, "--user", "alice", "done", series["id"], "--json")))
    assert nxt["status"] == "done"
    following = [t for t in json.loads(ok(tasks_cli(server, "--user", "alice", "list",
                 "--json"))) if t["series_id"] == series["series_id"]]  # fmt: skip
    assert len(following) == 1 and following[0]["local_due_at"] > series["local_due_at"]


def test_snooze_reminds_once_at_the_time_given(make_server: Callable[..., Server]) -> None:
    server = make_server().start()
    task = json.loads(ok(tasks_cli(server, "--user", "alice", "add", "Stretch", "--due",
                                   "in 2 hours", "--json")))  # fmt: skip
    asked = time.time()
    snoozed = json.loads(ok(tasks_cli(server, "--user", "alice", "snooze", task["id"][:8], "3s",
                                      "--json")))  # fmt: skip
    assert snoozed["snooze"] is True and snoozed["state"] == "scheduled"
    fire_at = parse_rfc3339(snoozed["fire_at"]).timestamp()
    assert asked + 2 < fire_at < time.time() + 3.5
    with api(server, "alice") as client:
        deadline = time.monotonic() + 20
        while not (notes := client.get("/api/notifications").json()["notifications"]):
            assert time.monotonic() < deadline, "the snoozed reminder never came"
            time.sleep(0.2)
        assert parse_rfc3339(notes[0]["fired_at"]).timestamp() >= fire_at  # never early
        time.sleep(2)
        assert len(client.get("/api/notifications").json()["notifications"]) == 1
        assert notes[0]["task_id"] == task["id"]

        # the route the CLI uses, and its refusals
        assert client.post("/api/tasks/nope/snooze", json={"for": "PT1M"}).status_code == 404
        bad = client.post(f"/api/tasks/{task['id']}/snooze", json={"for": "PT0S"})
        assert bad.status_code == 422 and "between 1 second" in bad.json()["detail"]
    later = ok(tasks_cli(server, "--user", "alice", "snooze", task["id"], "tomorrow 9:00"))
    assert later.startswith("snoozed until tomorrow 09:00 (America/New_York)")
    ok(tasks_cli(server, "--user", "alice", "done", task["id"]))
    refused = tasks_cli(server, "--user", "alice", "snooze", task["id"], "10m")
    assert refused.returncode == 1 and "is done: reopen it to snooze" in refused.stderr


TODOIST = """TYPE,CONTENT,DESCRIPTION,PRIORITY,INDENT,AUTHOR,RESPONSIBLE,DATE,DATE_LANG,TIMEZONE,DURATION,DURATION_UNIT
section,Home,,,,,,,,,,
task,Pay the rent @home @money,Monthly,1,1,Ann (1),,tomorrow 9:00,en,Europe/Paris,,
note,The IBAN is in the drawer,,,,,,,,,,

task,Water the plants,,4,1,,,every 3 days at 8am,en,Europe/Paris,,
task,Take the bins out,,3,1,,,every tuesday,en,,,
task,Read a book,,,1,,,,,,,
"""  # noqa: E501 - a Todoist export's header is one line


def test_import_a_todoist_export(make_server: Callable[..., Server], tmp_path: Path) -> None:
    server = make_server().start()
    (tmp_path / "todoist.csv").write_text(TODOIST)
    out = ok(tasks_cli(server, "--user", "alice", "import", str(tmp_path / "todoist.csv")))
    assert out.strip() == "imported 4 tasks (3 reminders scheduled); left out 1 section row"
    with api(server, "alice") as client:
        by_title = {t["title"]: t for t in all_tasks(client)}
    assert set(by_title) == {"Pay the rent", "Water the plants", "Take the bins out", "Read a book"}
    rent = by_title["Pay the rent"]
    assert rent["tags"] == ["home", "money"] and rent["priority"] == "high"
    assert rent["description"] == "Monthly\n\nThe IBAN is in the drawer"
    assert rent["timezone"] == "Europe/Paris" and rent["local_due_at"].endswith("T09:00:00")
    plants = by_title["Water the plants"]
    assert plants["series_id"] and plants["local_due_at"].endswith("T08:00:00")
    assert plants["priority"] == "low" and plants["timezone"] == "Europe/Paris"
    bins = by_title["Take the bins out"]
    assert datetime.fromisoformat(bins["local_due_at"]).weekday() == 1  # a Tuesday, 09:00
    assert bins["timezone"] == "America/New_York" and bins["series_id"]
    assert by_title["Read a book"]["due_at"] is None

    # and what `list --json` printed goes back in as another user, wall times kept
    exported = ok(tasks_cli(server, "--user", "alice", "list", "--json"))
    ok(tasks_cli(server, "--user", "bob", "import", "-", stdin=exported))
    with api(server, "bob") as client:
        copied = {t["title"]: t for t in all_tasks(client)}
    assert copied["Pay the rent"]["local_due_at"] == rent["local_due_at"]
    assert copied["Pay the rent"]["timezone"] == "Europe/Paris"
    assert copied["Pay the rent"]["due_at"] == rent["due_at"]


def test_an_import_never_half_reads_and_resumes_after_a_refused_chunk(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server().start()
    rows = [["title", "due", "tags", "reminders"]]
    rows += [[f"task {i}", f"in {i + 10} minutes", "bulk", "5m, 1h"] for i in range(1200)]
    unreadable = tmp_path / "unreadable.csv"
    with unreadable.open("w", newline="") as f:
        csv.writer(f).writerows([*rows, ["broken", "the day after never", "", ""]])
    refused = tasks_cli(server, "--user", "carol", "import", str(unreadable))
    assert (
        refused.returncode == 1 and "nothing was imported; 1 row cannot be read" in refused.stderr
    )
    assert "line 1202: cannot read 'the day after never' as a time" in refused.stderr

    rows[1101][2] = "x" * 65  # the server refuses a tag this long: the third chunk fails
    big = tmp_path / "big.csv"
    with big.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    stopped = tasks_cli(server, "--user", "carol", "import", str(big), "--chunk", "500")
    assert stopped.returncode == 1 and "Traceback" not in stopped.stderr
    assert "line 1102: tags[0]" in stopped.stderr, stopped.stderr
    assert "1000 of 1200 tasks were imported before this" in stopped.stderr
    assert "run it again with --skip 1000" in stopped.stderr
    with api(server, "carol") as client:
        assert len(all_tasks(client)) == 1000

    rows[1101][2] = "bulk"
    with big.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    resumed = ok(tasks_cli(server, "--user", "carol", "import", str(big), "--skip", "1000",
                           "--json"))  # fmt: skip
    assert json.loads(resumed) == {"imported": 200, "scheduled_reminders": 400, "left_out": {}}
    with api(server, "carol") as client:
        found = all_tasks(client)
    assert sorted(t["title"] for t in found) == sorted(f"task {i}" for i in range(1200))

    sent = json.loads(ok(tasks_cli(server, "--user", "dave", "import", str(big), "--dry-run")))
    assert len(sent["tasks"]) == 1200 and sent["tasks"][0]["reminders"] == [
        {"before": "PT5M"},
        {"before": "PT1H"},
    ]
    with api(server, "dave") as client:
        assert all_tasks(client) == []  # a dry run sends nothing


def test_mistakes_are_one_clear_line(make_server: Callable[..., Server], tmp_path: Path) -> None:
    server = make_server().start()
    no_token = tasks_cli(server, "list")
    assert no_token.returncode == 2 and "no token: set DUETIME_TOKEN" in no_token.stderr
    bad_token = tasks_cli(server, "--token", "nope", "list")
    assert bad_token.returncode == 1 and "duetime refused the token" in bad_token.stderr
    bad_due = tasks_cli(server, "--user", "alice", "add", "x", "--due", "whenever")
    assert bad_due.returncode == 2 and "Invalid value for --due: cannot read 'whenever'" in (
        bad_due.stderr
    )
    bad_remind = tasks_cli(server, "--user", "alice", "add", "x", "--remind", "5x")
    assert bad_remind.returncode == 2 and "reminder '5x' is neither a duration" in bad_remind.stderr
    bad_zone = tasks_cli(server, "--user", "alice", "--tz", "Mars/Base", "list")
    assert bad_zone.returncode == 2 and "not an IANA time zone" in bad_zone.stderr
    bad_rule = tasks_cli(server, "--user", "alice", "add", "x", "--due", "9am", "--repeat",
                         "FREQ=SOMETIMES")  # fmt: skip
    assert bad_rule.returncode == 1 and "FREQ" in bad_rule.stderr
    missing = tasks_cli(server, "--user", "alice", "done", "abc")
    assert missing.returncode == 1 and "no task id starts with 'abc'" in missing.stderr
    (tmp_path / "notes.txt").write_text("just some words\n")
    odd = tasks_cli(server, "--user", "alice", "import", str(tmp_path / "notes.txt"))
    assert odd.returncode == 1 and "not a file duetime reads" in odd.stderr
    down = tasks_cli(
        server, "--user", "alice", "list", DUETIME_URL=f"http://127.0.0.1:{free_port()}"
    )
    assert down.returncode == 1 and "cannot reach duetime" in down.stderr
    for done in (no_token, bad_token, bad_due, bad_remind, bad_zone, bad_rule, missing, odd, down):
        assert "Traceback" not in done.stderr, done.stderr
    with api(server, "alice") as client:
        assert all_tasks(client) == []  # nothing was created by a refused command
